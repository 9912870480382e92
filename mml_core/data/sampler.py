"""Training order that depends only on (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler


class EpochShuffleSampler(Sampler[int]):
    """Random order per epoch drawn from ``seed + epoch``; optionally skips the first samples once.

    Lightning calls :meth:`set_epoch` before every epoch. :meth:`resume_at` makes the next pass of
    ``epoch`` start after ``skip`` samples (what an interrupted epoch already trained on).
    """

    def __init__(self, data_source: Sized, seed: int):
        self.n = len(data_source)
        self.seed = seed
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        self._resume = (epoch, skip)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        if self._resume is not None:
            epoch, skip = self._resume
            self._resume = None
            if epoch == self.epoch:
                order = order[skip:]
        return iter(order)

    def __len__(self) -> int:
        return self.n
