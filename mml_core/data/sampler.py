"""Training order that depends only on (seed, epoch), so a resumed run sees the same batches.

MML's sampling modes: a shuffle of the split (default), ``sampling.balanced`` (each class drawn
equally often: weighted draws with replacement, weights 1 / class count) and
``sampling.sample_num`` (that many draws per epoch, with replacement). Each epoch's draw comes
from a generator seeded with ``seed + epoch``; the indices are :class:`SampleKey` s that carry the
epoch on to the dataset, which seeds the sample's augmentation with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Sized

import torch
from torch.utils.data import Sampler

from mml_core.data.seeding import SampleKey


class EpochShuffleSampler(Sampler[int]):
    """Random order per epoch drawn from ``seed + epoch``; optionally skips the first samples once.

    Lightning calls :meth:`set_epoch` before every epoch. :meth:`resume_at` makes the next pass of
    ``epoch`` start after ``skip`` samples (what an interrupted epoch already trained on).

    :param weights: per-sample draw weights (balanced sampling, drawn with replacement)
    :param num_samples: draws per epoch (default: the split's size; with replacement when set)
    """

    def __init__(
        self,
        data_source: Sized,
        seed: int,
        weights: Sequence[float] | None = None,
        num_samples: int | None = None,
    ):
        self.n = len(data_source)
        self.seed = seed
        self.weights = torch.as_tensor(weights, dtype=torch.double) if weights is not None else None
        self.num_samples = num_samples or self.n
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        self._resume = (epoch, skip)

    def _order(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator).tolist()
        if self.num_samples != self.n:
            return torch.randint(self.n, (self.num_samples,), generator=generator).tolist()
        return torch.randperm(self.n, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if self._resume is not None:
            epoch, skip = self._resume
            self._resume = None
            if epoch == self.epoch:
                order = order[skip:]
        return iter([SampleKey(index, self.epoch) for index in order])

    def __len__(self) -> int:
        return self.num_samples


def balanced_weights(targets: Sequence[int]) -> list[float]:
    """MML's balanced-sampling weights: 1 / (number of samples of the sample's class)."""
    counts: dict[int, int] = {}
    for target in targets:
        counts[target] = counts.get(target, 0) + 1
    return [1.0 / counts[target] for target in targets]
