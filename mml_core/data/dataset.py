"""Image datasets of one task split, decoded per sample (in DataLoader workers) or from a bounded cache.

A dataset holds sample ids, file paths and targets only; images (and segmentation masks) are read
when a sample is drawn, so memory does not grow with the number of images. With caching, the
deterministic part of the pipeline (decoded, preprocessed uint8 at the target size, with the mask) is
kept for every sample once, as MML's ``sampling.enable_caching`` does; augmentation and
normalization still run per draw. Targets per task type: :mod:`mml_core.data.targets`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mml_core.data.seeding import position_seed
from mml_core.data.targets import TaskTargets
from mml_core.data.transforms import ImagePipeline
from mml_core.tasks.description import TaskDescription
from mml_core.tasks.images import read_rgb

logger = logging.getLogger(__name__)

# (image, target, index); the target's form depends on the task type (see mml_core.data.targets)
Sample = tuple[torch.Tensor, Any, int]
Prepared = tuple[np.ndarray, np.ndarray | None]


class TaskSplitDataset(Dataset):
    """Samples ``ids`` of a task split as ``(image, target, index)``; ``ids[index]`` names the sample.

    ``index`` may be a :class:`~mml_core.data.seeding.SampleKey`: its epoch seeds the sample's
    augmentation, so a draw depends only on (seed, epoch, index).
    """

    def __init__(
        self,
        root: Path,
        samples: dict[str, dict],
        ids: Sequence[str],
        pipeline: ImagePipeline,
        seed: int = 0,
        cache: bool = False,
        targets: TaskTargets | None = None,
    ):
        self.root = Path(root)
        self.ids = list(ids)
        self.paths = [str(self.root / samples[i]["image"]) for i in self.ids]
        self.target_reader = targets or TaskTargets()
        # segmentation: the mask entries, read with the image
        self.targets = [self.target_reader.label(samples[i]) for i in self.ids]
        self.pipeline = pipeline
        self.seed = seed
        # the prepared images (and segmentation masks) when caching
        self.cached: list[np.ndarray] | None = None
        self.cached_masks: list[np.ndarray | None] = []
        if cache and self.ids:
            started = time.monotonic()
            self.cached, self.cached_masks = map(list, zip(*(self._prepare(index) for index in range(len(self.ids)))))
            logger.info("Cached %d images in %.1f s.", len(self.ids), time.monotonic() - started)

    def __len__(self) -> int:
        return len(self.ids)

    def _prepare(self, index: int) -> Prepared:
        image = read_rgb(self.paths[index])
        masks = self.target_reader.masks
        if masks is None:
            return self.pipeline.prepare(image)
        entry = self.targets[index]
        if entry is None:
            mask = self.target_reader.unlabeled_mask(image.shape[:2])
        else:
            mask = masks.read(self.root, entry, image.shape[:2], self.ids[index])
        return self.pipeline.prepare(image, mask)

    def prepared(self, index: int) -> Prepared:
        """Sample ``index`` after the deterministic part of the pipeline: uint8 HxWx3 image, HxW mask or None."""
        if self.cached is not None:
            return self.cached[index], self.cached_masks[index]
        return self._prepare(index)

    def image(self, index: int) -> np.ndarray:
        """Sample ``index``'s image after the deterministic part of the pipeline (uint8, HxWx3)."""
        return self.prepared(index)[0]

    def __getitem__(self, key: int) -> Sample:
        index = int(key)
        epoch = getattr(key, "epoch", None)
        seed = position_seed(self.seed, epoch, index) if epoch is not None else None
        image, mask = self.prepared(index)
        tensor, mask_tensor = self.pipeline.finish(image, seed, mask)
        return tensor, self.targets[index] if mask_tensor is None else mask_tensor, index


def split_ids(desc: TaskDescription, fold: int) -> dict[str, list[str]]:
    """Sample ids per split for ``fold``: its fold is ``val``, the other folds ``train``."""
    n_folds = len(desc.train_folds)
    if not 0 <= fold < max(n_folds, 1):
        raise ValueError(
            f"Fold {fold} is out of range for task '{desc.name}', which has {n_folds} folds "
            f"(0..{n_folds - 1}). Choose a fold in that range."
        )
    val = list(desc.train_folds[fold]) if n_folds else []
    val_set = set(val)
    train = [i for i in desc.train_samples if i not in val_set]
    return {
        "train": train,
        "val": val,
        "test": list(desc.test_samples),
        "unlabeled": list(desc.unlabeled_samples),
    }


def split_samples(desc: TaskDescription) -> dict[str, dict[str, dict]]:
    """The sample dicts each split's ids refer to (train and val share the training pool)."""
    return {
        "train": desc.train_samples,
        "val": desc.train_samples,
        "test": desc.test_samples,
        "unlabeled": desc.unlabeled_samples,
    }
