"""``MultiTaskDataModule``: one Lightning datamodule over the splits of one or more tasks."""

from __future__ import annotations

from collections.abc import Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader

from mml_core.data.dataset import TaskSplitDataset, build_split_datasets, collate_batch
from mml_core.data.sampler import EpochShuffleSampler
from mml_core.tasks.description import TaskDescription
from mml_core.tasks.struct import TaskStruct

SPLITS = ("train", "val", "test", "unlabeled")


class MultiTaskDataModule(pl.LightningDataModule):
    """Train batches are dicts ``{task: (images, targets, indices)}`` cycling through all tasks;
    val/test/predict give one dataloader per task (``dataloader_idx`` = position in ``task_names``).

    ``predict_on`` picks the split that ``trainer.predict`` uses ("test", "val" or "unlabeled").
    ``batch_size`` is an attribute so that Lightning's batch-size tuner can change it.
    """

    def __init__(
        self,
        task_structs: list[TaskStruct],
        descriptions: Mapping[str, TaskDescription],
        fold: int = 0,
        batch_size: int = 64,
        num_workers: int = 0,
        cache: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.task_structs = list(task_structs)
        self.task_names = [s.name for s in self.task_structs]
        self.descriptions = dict(descriptions)
        self.fold = fold
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache = cache
        self.seed = seed
        self.predict_on = "test"
        self.datasets: dict[str, dict[str, TaskSplitDataset]] = {}

    def setup(self, stage: str | None = None) -> None:
        for struct in self.task_structs:
            if struct.name not in self.datasets:
                self.datasets[struct.name] = build_split_datasets(
                    self.descriptions[struct.name], struct.paths["dataset_root"], self.fold, self.cache
                )

    def _loader(self, dataset: TaskSplitDataset, shuffle: bool) -> DataLoader:
        # training order depends only on (seed, epoch): a resumed step sees the same batches
        sampler = EpochShuffleSampler(dataset, self.seed) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_batch,
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> CombinedLoader:
        loaders = {name: self._loader(self.datasets[name]["train"], shuffle=True) for name in self.task_names}
        return CombinedLoader(loaders, mode="max_size_cycle")

    def _per_task(self, split: str) -> list[DataLoader]:
        return [self._loader(self.datasets[name][split], shuffle=False) for name in self.task_names]

    def val_dataloader(self) -> list[DataLoader]:
        return self._per_task("val")

    def test_dataloader(self) -> list[DataLoader]:
        return self._per_task("test")

    def predict_dataloader(self) -> list[DataLoader]:
        if self.predict_on not in SPLITS:
            raise ValueError(f"predict_on must be one of {SPLITS}, got {self.predict_on!r}.")
        return self._per_task(self.predict_on)
