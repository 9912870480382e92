"""The datasets of a task's splits and their DataLoaders, in plain torch (no Lightning).

Training wraps them in the Lightning datamodule; prediction uses them directly, so a step that
only predicts does not import Lightning. Samplers follow MML's ``sampling`` group (see
:mod:`~mml_core.data.sampler`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch.utils.data import DataLoader

from mml_core.data.dataset import TaskSplitDataset, split_ids, split_samples
from mml_core.data.sampler import EpochShuffleSampler, balanced_weights
from mml_core.data.targets import TaskTargets
from mml_core.data.transforms import ImagePipeline
from mml_core.tasks.description import TaskDescription, check_files_exist

SPLITS = ("train", "val", "test", "unlabeled")
CACHED_SPLITS = ("train", "val")


def split_datasets(
    desc: TaskDescription,
    root: Path,
    pipelines: Mapping[str, ImagePipeline],
    fold: int,
    seed: int,
    cache: bool = False,
) -> dict[str, TaskSplitDataset]:
    """Every split of ``desc`` for ``fold`` (its images and masks checked first); training gets the
    ``train`` pipeline, the others ``eval``; ``cache`` keeps train and val decoded."""
    for modality in ("image", "mask"):
        check_files_exist(desc, Path(root), modality)
    ids, samples = split_ids(desc, fold), split_samples(desc)
    targets = TaskTargets(desc.task_type, desc.idx_to_class, desc.modalities, desc.name)
    return {
        split: TaskSplitDataset(
            root, samples[split], ids[split], pipelines["train" if split == "train" else "eval"], seed,
            cache=cache and split in CACHED_SPLITS, targets=targets,
        )  # fmt: skip
        for split in SPLITS
    }


def train_loader(
    dataset: TaskSplitDataset,
    batch_size: int,
    workers: int,
    seed: int,
    balanced: bool = False,
    sample_num: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """Training batches in an order that depends only on (seed, epoch), so a resumed step sees the same."""
    weights = balanced_weights(dataset.targets) if balanced else None
    sampler = EpochShuffleSampler(dataset, seed, weights=weights, num_samples=sample_num or None)
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=drop_last,
        persistent_workers=workers > 0,
    )  # fmt: skip


def eval_loader(dataset: TaskSplitDataset, batch_size: int, workers: int) -> DataLoader:
    """Batches of ``dataset`` in its order (validation, testing, prediction)."""
    return DataLoader(dataset, batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0)
