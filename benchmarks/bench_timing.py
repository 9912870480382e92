"""Timing statistics, alternating rounds and the load of other processes while measuring.

This machine is shared and its load drifts, so every script measures the sides of a ratio in one
run, alternating (A, B, A, B ...) with ``alternate``, and compares values of the same round
(``paired_ratios``). While each measurement runs, a ``CpuMeter`` notes how many cores other
processes kept busy; the readings go into a ``LoadLog`` that the script creates, passes to
``alternate`` and then to the report, so nothing is kept in module state between calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger("benchmarks")


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values (a figure that could not be measured shows as nan)."""
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """``median (min-max, n)`` with sensible digits."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{median(values):.3g} ({min(values):.3g}-{max(values):.3g}, n={len(values)})"


def paired_ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Ratios of the values measured in the same round (the load of a round cancels out)."""
    return [a / b for a, b in zip(num, den) if b]


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return float("nan")


class CpuMeter:
    """How many cores other processes used while a measurement ran: machine busy time minus ours
    (this process and the children it waited for), over the wall time; in ``others`` on exit."""

    others: float

    def __enter__(self) -> CpuMeter:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self._t, self._busy, self._wall = os.times(), _busy_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        t, wall = os.times(), time.perf_counter() - self._wall
        ours = sum(t[:4]) - sum(self._t[:4])
        self.others = max(0.0, _busy_seconds() - self._busy - ours) / wall if wall > 0 else float("nan")


@dataclasses.dataclass
class LoadLog:
    """Cores that other processes kept busy during each measurement of one script run, in order.

    One per run: ``alternate`` adds a reading per measurement, the report summarises them.
    """

    cores: list[float] = dataclasses.field(default_factory=list)

    def add(self, others: float) -> None:
        """Record the reading of one measurement."""
        self.cores.append(others)


def alternate(
    sides: Mapping[str, Callable[[], float]], repeats: int, load: LoadLog
) -> dict[str, list[float]]:
    """Run every side once per round, in order (A, B, A, B ...); the lists of measured values.

    The load of other processes during each measurement is added to ``load``.
    """
    values: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeats):
        for name, measure in sides.items():
            with CpuMeter() as meter:
                value = measure()
            load.add(meter.others)
            values[name].append(value)
            logger.info(
                "round %d/%d  %-28s %8.3f   (other processes used %.1f cores meanwhile)",
                round_ + 1,
                repeats,
                name,
                value,
                meter.others,
            )
    return values
