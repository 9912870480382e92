"""Image classification datasets of one task split, in memory or decoded on access."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from mml_core.tasks.description import TaskDescription, check_files_exist

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(img, dtype=np.float32) / 255.0
    return array.transpose(2, 0, 1)


class TaskSplitDataset(Dataset):
    """Samples ``ids`` of a task split as ``(image, target, index)``; ``ids[index]`` names the sample.

    Images are loaded as RGB, normalised with the task's means/stds and resized to the task's largest size. With
    ``cache=True`` (the default) all images are decoded once into one tensor, so epochs cost no PNG
    decoding and batches are gathered by tensor indexing (``__getitems__``).
    """

    def __init__(
        self,
        desc: TaskDescription,
        root: Path,
        samples: dict[str, dict],
        ids: Sequence[str],
        cache: bool = True,
    ):
        self.root = Path(root)
        self.ids = list(ids)
        self.paths = [self.root / samples[i]["image"] for i in self.ids]
        self.targets = torch.tensor([int(samples[i].get("class", -1)) for i in self.ids], dtype=torch.long)
        self.size = (int(desc.sizes.get("max_height", 0)), int(desc.sizes.get("max_width", 0)))
        # like MML, every image is loaded as RGB so any backbone fits any task
        self.mean = torch.tensor([desc.means.get(k, 0.0) for k in "rgb"]).view(3, 1, 1)
        self.std = torch.tensor([desc.stds.get(k, 1.0) or 1.0 for k in "rgb"]).view(3, 1, 1)
        if not all(self.size) and self.paths:
            with Image.open(self.paths[0]) as img:
                self.size = (img.height, img.width)
        self.images: torch.Tensor | None = None
        if cache:
            self.images = torch.stack([self._load(i) for i in range(len(self.ids))]) if self.ids else None

    def _load(self, index: int) -> torch.Tensor:
        array = _read_image(self.paths[index], self.size)
        return (torch.from_numpy(array) - self.mean) / self.std

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Batch:
        image = self.images[index] if self.images is not None else self._load(index)
        return image, self.targets[index], torch.tensor(index)

    def __getitems__(self, indices: list[int]) -> Batch:
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.images is not None:
            return self.images[idx], self.targets[idx], idx
        return torch.stack([self._load(i) for i in indices]), self.targets[idx], idx


def collate_batch(batch: Batch | list[Batch]) -> Batch:
    """Pass through batches built by ``__getitems__``; stack lists of single samples."""
    if isinstance(batch, tuple):
        return batch
    images, targets, indices = zip(*batch)
    return torch.stack(images), torch.stack(targets), torch.stack(indices)


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


def build_split_datasets(
    desc: TaskDescription, root: Path, fold: int, cache: bool = True
) -> dict[str, TaskSplitDataset]:
    """Datasets of every split of ``desc`` for ``fold``; checks first that all images exist."""
    check_files_exist(desc, Path(root))
    ids = split_ids(desc, fold)
    sources = {
        "train": desc.train_samples,
        "val": desc.train_samples,
        "test": desc.test_samples,
        "unlabeled": desc.unlabeled_samples,
    }
    return {split: TaskSplitDataset(desc, root, sources[split], ids[split], cache) for split in ids}
