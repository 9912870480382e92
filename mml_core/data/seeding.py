"""Seeds that depend only on a position (run seed, epoch, batch or sample), never on process history.

Training seeds every batch from (seed, epoch, batch) and every augmented sample from
(seed, epoch, sample index), so an interrupted and resumed run draws exactly the random numbers
an uninterrupted one draws, whichever DataLoader worker handles a sample.
"""

from __future__ import annotations

import hashlib


def position_seed(seed: int, *position: int) -> int:
    """A 63-bit seed for ``position`` (e.g. epoch and batch) of run ``seed``."""
    text = "/".join(str(p) for p in (seed, *position))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


class SampleKey(int):
    """A sample index that also carries the epoch it is drawn for.

    Samplers yield these instead of plain ints: the DataLoader hands them unchanged to the dataset,
    in worker processes too, so augmentation can seed from (seed, epoch, index). Everywhere else it
    is just the index.
    """

    epoch: int

    def __new__(cls, index: int, epoch: int) -> SampleKey:
        key = super().__new__(cls, index)
        key.epoch = epoch
        return key

    def __reduce__(self) -> tuple:
        return SampleKey, (int(self), self.epoch)
