"""From a decoded image to the model's input: MML's preprocessing, augmentation and normalization.

An :class:`ImagePipeline` has three parts, applied in this order:

1. ``fixed``: deterministic, the same output every epoch, so its result may be cached: MML's
   ``preprocessing.pipeline`` applied on the fly to RAW images of a task that has no preprocessed
   version, or, where no pipeline fixes the size and a task's images differ in size, a resize to
   the task's largest size (as loading has always done);
2. ``random``: MML's ``augmentations.cpu.pipeline`` (training only), with the ``albumentations``
   or the ``torchvision`` (v2) backend; each sample's draw is seeded from (run seed, epoch, sample
   index), so a resumed run augments exactly as an uninterrupted one, in any DataLoader worker;
3. normalization to float (``augmentations.normalization``: ImageNet's, the task's or the
   pretrained model's mean and std, or none).

Pipelines are lists of ``{name: <transform class>, **kwargs}`` as in MML's config files. A
segmentation mask (``H x W`` uint8 class positions) goes through the fixed and random parts with its
image: the same geometric change, nearest-neighbour interpolation, no colour change, no normalization
(albumentations' ``mask=``, torchvision's ``tv_tensors.Mask``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mml_core.config import MisconfigurationError

# a deterministic step on an image and, for segmentation, its mask (None otherwise)
Fixed = Callable[[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray | None]]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKENDS = ("albumentations", "torchvision")
_DOCS = {
    "albumentations": "https://albumentations.ai/docs/api-reference/",
    "torchvision": "https://pytorch.org/vision/stable/transforms.html#v2-api-reference-recommended",
}


def _entries(pipeline: Sequence[Mapping[str, Any]] | Mapping, where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(pipeline, Mapping):  # MML writes an empty pipeline as {}
        if pipeline:
            raise MisconfigurationError(f"{where} must be a list of {{name: ..., **kwargs}} entries, got {dict(pipeline)}.")
        return []
    entries = []
    for position, entry in enumerate(pipeline):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise MisconfigurationError(
                f"{where}[{position}] must be a mapping with a 'name' (a transform class) and its keyword "
                f"arguments, e.g. {{name: HorizontalFlip, p: 0.5}}; got {entry!r}."
            )
        entries.append((entry["name"], {k: v for k, v in entry.items() if k != "name"}))
    return entries


def _compose(backend: str, pipeline: Sequence[Mapping[str, Any]] | Mapping, where: str) -> Any:
    """The pipeline as an ``albumentations.Compose`` or ``torchvision.transforms.v2.Compose``; None if empty."""
    entries = _entries(pipeline, where)
    if not entries:
        return None
    if backend == "albumentations":
        import albumentations as module
    elif backend == "torchvision":
        from torchvision.transforms import v2 as module
    else:
        raise MisconfigurationError(f"{where}: unknown backend '{backend}'; use one of {', '.join(BACKENDS)}.")
    transforms = []
    for position, (name, kwargs) in enumerate(entries):
        cls = getattr(module, name, None)
        if not isinstance(cls, type):
            raise MisconfigurationError(
                f"{where}[{position}]: {backend} has no transform '{name}'. Use a class name of {_DOCS[backend]} "
                f"(e.g. {'HorizontalFlip' if backend == 'albumentations' else 'RandomHorizontalFlip'})."
            )
        try:
            transforms.append(cls(**kwargs))
        except Exception as exc:  # the libraries raise TypeError, ValueError or pydantic errors
            raise MisconfigurationError(
                f"{where}[{position}]: {backend}.{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                f"failed: {str(exc).splitlines()[0]}. Fix its arguments ({_DOCS[backend]})."
            ) from None
    return module.Compose(transforms)


def resize_to(height: int, width: int) -> Fixed:
    """A deterministic resize of HxWx3 uint8 images (bilinear) and their masks (nearest) to ``height x width``."""
    from PIL import Image

    def resize(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        if image.shape[:2] == (height, width):
            return image, mask
        image = np.array(Image.fromarray(image).resize((width, height), Image.BILINEAR))
        if mask is not None:
            mask = np.array(Image.fromarray(mask).resize((width, height), Image.NEAREST))
        return image, mask

    return resize


def _apply(compose: Any, image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """An albumentations ``compose`` on ``image`` and, if given, its mask."""
    if mask is None:
        return compose(image=image)["image"], None
    out = compose(image=image, mask=mask)
    return out["image"], out["mask"]


def preprocessing_pipeline(pipeline: Sequence[Mapping[str, Any]] | Mapping) -> Fixed | None:
    """MML's ``preprocessing.pipeline`` (always albumentations, as in MML) on HxWx3 uint8 images and masks."""
    compose = _compose("albumentations", pipeline, "preprocessing.pipeline")
    if compose is None:
        return None
    return lambda image, mask=None: _apply(compose, image, mask)


@dataclasses.dataclass
class ImagePipeline:
    """HxWx3 uint8 image (and HxW uint8 mask) -> 3xHxW float tensor (and HxW int64 mask); see the module docstring."""

    fixed: Fixed | None = None
    backend: str = "albumentations"
    random: Any = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None

    def __post_init__(self) -> None:
        self._scale = None
        if self.mean is not None:
            self._scale = (
                torch.as_tensor(self.mean, dtype=torch.float32).view(3, 1, 1),
                torch.as_tensor(self.std, dtype=torch.float32).view(3, 1, 1),
            )

    @classmethod
    def augmented(
        cls,
        backend: str,
        pipeline: Sequence[Mapping[str, Any]] | Mapping,
        fixed: Fixed | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> ImagePipeline:
        """A pipeline whose random part is ``pipeline`` built with ``backend`` (checked here)."""
        return cls(fixed, backend, _compose(backend, pipeline, "augmentations.cpu.pipeline"), mean, std)

    def prepare(self, image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The deterministic part: what a cache may keep."""
        return self.fixed(image, mask) if self.fixed is not None else (image, mask)

    def finish(
        self, image: np.ndarray, seed: int | None, mask: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The random part (seeded with ``seed``; skipped without augmentation) and normalization."""
        if self.random is not None and self.backend == "albumentations":
            self.random.set_random_seed(seed)
            image, mask = _apply(self.random, image, mask)
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        target = torch.from_numpy(np.ascontiguousarray(mask)).long() if mask is not None else None
        if self.random is not None and self.backend == "torchvision":
            from torchvision import tv_tensors

            # torchvision's v2 transforms draw from torch's default generator
            if seed is not None:
                torch.default_generator.manual_seed(seed)
            if target is None:
                tensor = self.random(tensor)
            else:
                tensor, target = self.random(tensor, tv_tensors.Mask(target))
                target = target.as_subclass(torch.Tensor)
        tensor = tensor.float().div_(255.0)
        if self._scale is not None:
            tensor = tensor.sub_(self._scale[0]).div_(self._scale[1])
        return tensor, target
