"""``MultiTaskDataModule``: one Lightning datamodule over the splits of one or more tasks.

Sampling follows MML's ``sampling`` group: ``batch_size`` is the total over the tasks of a batch
(each task gets ``batch_size // n_tasks``), ``num_workers`` likewise, ``balanced``, ``sample_num``
and ``drop_last`` shape the training loader (see :mod:`~mml_core.data.sampler`), and
``enable_caching`` keeps the decoded training and validation images of tasks while their sample
count fits into ``cache_max_size`` (counted over all tasks, as MML does).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader

from mml_core.data.dataset import TaskSplitDataset
from mml_core.data.loaders import SPLITS, eval_loader, split_datasets, train_loader
from mml_core.data.transforms import ImagePipeline
from mml_core.tasks.description import TaskDescription
from mml_core.tasks.struct import TaskStruct

logger = logging.getLogger(__name__)


class MultiTaskDataModule(pl.LightningDataModule):
    """Train batches are dicts ``{task: (images, targets, indices)}`` cycling through all tasks;
    val/test/predict give one dataloader per task (``dataloader_idx`` = position in ``task_names``).

    ``pipelines`` maps each task to its ``train`` and ``eval`` :class:`ImagePipeline` (evaluation
    gets only the deterministic part and normalization). ``predict_on`` picks the split that
    :meth:`predict_dataloader` serves. ``batch_size`` is an attribute so that Lightning's
    batch-size tuner can change it.
    """

    def __init__(
        self,
        task_structs: list[TaskStruct],
        descriptions: Mapping[str, TaskDescription],
        pipelines: Mapping[str, Mapping[str, ImagePipeline]],
        fold: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        balanced: bool = False,
        sample_num: int = 0,
        drop_last: bool = False,
        cache: bool = False,
        cache_max_size: int = 10_000,
    ):
        super().__init__()
        self.task_structs = list(task_structs)
        self.task_names = [s.name for s in self.task_structs]
        self.descriptions = dict(descriptions)
        self.pipelines = dict(pipelines)
        self.fold = fold
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.balanced = balanced
        self.sample_num = sample_num
        self.drop_last = drop_last
        self.cache = cache
        self.cache_max_size = cache_max_size
        self.predict_on = "test"
        self.datasets: dict[str, dict[str, TaskSplitDataset]] = {}

    def _cached_tasks(self) -> set[str]:
        """Tasks whose train and val images fit the cache budget, first come first served (as MML)."""
        if not self.cache:
            return set()
        cached, used = set(), 0
        for struct in self.task_structs:
            size = len(self.descriptions[struct.name].train_samples)
            if used + size > self.cache_max_size:
                logger.info("No caching for %s: its %d images would exceed sampling.cache_max_size=%d.",
                            struct.name, size, self.cache_max_size)
                continue
            cached.add(struct.name)
            used += size
        return cached

    def setup(self, stage: str | None = None) -> None:
        cached = self._cached_tasks()
        for struct in self.task_structs:
            if struct.name not in self.datasets:
                self.datasets[struct.name] = split_datasets(
                    self.descriptions[struct.name], Path(struct.paths["dataset_root"]), self.pipelines[struct.name],
                    self.fold, self.seed, cache=struct.name in cached,
                )  # fmt: skip

    @property
    def _per_task(self) -> tuple[int, int]:
        """Batch size and workers of each task's loader (MML splits both over the tasks)."""
        n = len(self.task_names)
        return max(1, self.batch_size // n), self.num_workers // n

    def train_dataloader(self) -> CombinedLoader:
        batch_size, workers = self._per_task
        loaders = {
            name: train_loader(
                self.datasets[name]["train"], batch_size, workers, self.seed, self.balanced, self.sample_num,
                self.drop_last,
            )  # fmt: skip
            for name in self.task_names
        }
        return CombinedLoader(loaders, mode="max_size_cycle")

    def _split_loaders(self, split: str) -> list[DataLoader]:
        batch_size, workers = self._per_task
        return [eval_loader(self.datasets[name][split], batch_size, workers) for name in self.task_names]

    def val_dataloader(self) -> list[DataLoader]:
        return self._split_loaders("val")

    def test_dataloader(self) -> list[DataLoader]:
        return self._split_loaders("test")

    def predict_dataloader(self) -> list[DataLoader]:
        if self.predict_on not in SPLITS:
            raise ValueError(f"predict_on must be one of {SPLITS}, got {self.predict_on!r}.")
        return self._split_loaders(self.predict_on)
