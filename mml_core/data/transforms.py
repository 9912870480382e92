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

Pipelines are lists of ``{name: <transform class>, **kwargs}`` as in MML's config files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from mml_core.config import MisconfigurationError

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


def resize_to(height: int, width: int) -> Callable[[np.ndarray], np.ndarray]:
    """A deterministic resize of HxWx3 uint8 images to ``height x width`` (bilinear)."""
    from PIL import Image

    def resize(image: np.ndarray) -> np.ndarray:
        if image.shape[:2] == (height, width):
            return image
        return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))

    return resize


def preprocessing_pipeline(pipeline: Sequence[Mapping[str, Any]] | Mapping) -> Callable[[np.ndarray], np.ndarray] | None:
    """MML's ``preprocessing.pipeline`` (always albumentations, as in MML) as a function on HxWx3 uint8."""
    compose = _compose("albumentations", pipeline, "preprocessing.pipeline")
    if compose is None:
        return None
    return lambda image: compose(image=image)["image"]


@dataclasses.dataclass
class ImagePipeline:
    """HxWx3 uint8 image -> 3xHxW float tensor; see the module docstring."""

    fixed: Callable[[np.ndarray], np.ndarray] | None = None
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
        fixed: Callable[[np.ndarray], np.ndarray] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> ImagePipeline:
        """A pipeline whose random part is ``pipeline`` built with ``backend`` (checked here)."""
        return cls(fixed, backend, _compose(backend, pipeline, "augmentations.cpu.pipeline"), mean, std)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The deterministic part: what a cache may keep."""
        return self.fixed(image) if self.fixed is not None else image

    def finish(self, image: np.ndarray, seed: int | None) -> torch.Tensor:
        """The random part (seeded with ``seed``; skipped without augmentation) and normalization."""
        if self.random is not None and self.backend == "albumentations":
            self.random.set_random_seed(seed)
            image = self.random(image=image)["image"]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        if self.random is not None and self.backend == "torchvision":
            # torchvision's v2 transforms draw from torch's default generator
            if seed is not None:
                torch.default_generator.manual_seed(seed)
            tensor = self.random(tensor)
        tensor = tensor.float().div_(255.0)
        if self._scale is not None:
            tensor = tensor.sub_(self._scale[0]).div_(self._scale[1])
        return tensor

    def __call__(self, image: np.ndarray, seed: int | None = None) -> torch.Tensor:
        return self.finish(self.prepare(image), seed)
