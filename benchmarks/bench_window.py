"""The timed batch window of ``image_throughput.py``, inside the training processes of both sides.

``Window`` is told when each training batch ends (``batch_end(i, samples)``). The window opens at
the end of batch ``first - 1`` and closes at the end of batch ``last - 1``: it holds exactly the
batches ``first .. last-1``, each with everything that happens per batch (fetching it from the
DataLoader workers, forward, loss, backward, optimizer step and, on the Lightning side, every
callback's and the logger's per-batch work), and nothing before it (imports, building the model,
forking the workers, their first batches). It writes wall time, the CPU time of this process and
of its whole process tree (the DataLoader workers decode and augment the images) and the samples
to a JSON file. Outside the window it also notes the time from the process's start to the end of
the first batch (start-up, reported for context).

``batch_window_timer`` builds the same as a Lightning callback; the Lightning side names it in
the config's ``cbs`` (``_target_: bench_window.batch_window_timer``), so the job runner builds it
with the trainer like any user callback. This module imports no Lightning unless that is called.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process and all its live descendants."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:  # a worker that just exited
            pass
    return total


def clocks() -> tuple[float, float, float]:
    """Wall time, this process's CPU time, the process tree's CPU time."""
    return time.perf_counter(), time.process_time(), tree_cpu()


class Window:
    """See the module docstring; ``first >= 1`` batches before the window are warm-up."""

    def __init__(self, first: int, last: int, out: str | Path):
        if not 1 <= first < last:
            raise ValueError(f"the window needs 1 <= first < last, got first={first}, last={last}")
        self.first, self.last, self.out = first, last, Path(out)
        self.samples = 0
        self.batch_seconds: list[float] = []
        self._start: tuple[float, float, float] | None = None
        self._previous = 0.0
        self.done = False

    def batch_end(self, index: int, samples: int) -> None:
        now = time.perf_counter()
        if index == 0:
            import psutil

            started = psutil.Process().create_time()
            self.first_batch_s = time.time() - started  # process start to the end of batch 0
        if index == self.first - 1:
            self._start = clocks()
        elif self._start is not None and self.first <= index < self.last:
            self.samples += samples
            self.batch_seconds.append(now - self._previous)
        self._previous = now
        if index == self.last - 1 and self._start is not None and not self.done:
            end = clocks()
            self.done = True
            result = {
                "wall": end[0] - self._start[0],
                "cpu_main": end[1] - self._start[1],
                "cpu_tree": end[2] - self._start[2],
                "samples": self.samples,
                "batches": self.last - self.first,
                "first_batch_s": getattr(self, "first_batch_s", float("nan")),
                "batch_seconds": self.batch_seconds,
                "threads": _threads(),
                "pid": os.getpid(),
            }
            tmp = self.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(result))
            tmp.replace(self.out)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def batch_window_timer(first: int, last: int, out: str) -> Any:
    """The window as a Lightning callback (for the config's ``cbs``)."""
    import pytorch_lightning as pl

    class BatchWindowTimer(pl.Callback):
        def __init__(self) -> None:
            self.window = Window(first, last, out)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            samples = sum(len(part[1]) for part in batch.values() if part is not None)
            self.window.batch_end(batch_idx, samples)

    return BatchWindowTimer()
