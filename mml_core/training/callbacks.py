"""Callbacks shared by every training step: metrics history with a log line per epoch, and the
step's progress record for the console."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from mml_core.progress import update_progress

logger = logging.getLogger(__name__)


def key_metrics(record: Mapping[str, float]) -> dict[str, float]:
    """The metrics worth a glance after an epoch: the losses and the accuracies."""
    return {k: v for k, v in record.items() if k.endswith(("loss", "/acc"))}


class MetricsTrackerCallback(pl.Callback):
    """Records the epoch-level metrics of every epoch (and of test runs) as plain floats.

    ``metrics`` is a list with one dict per finished training epoch (train and val metrics
    together, plus ``epoch``) followed by one dict per test run. The history is part of the
    checkpoint (``state_dict``), so a resumed training step keeps the epochs before the
    interruption. Each epoch also writes one log line, so ``tail -f`` on a job log shows progress.
    """

    def __init__(self) -> None:
        self.metrics: list[dict[str, float]] = []
        self._epoch_start = time.monotonic()

    @staticmethod
    def _snapshot(trainer: pl.Trainer, prefixes: tuple[str, ...]) -> dict[str, float]:
        return {
            k: float(v)
            for k, v in sorted(trainer.callback_metrics.items())
            if k.startswith(prefixes) and not k.endswith("_step") and getattr(v, "numel", lambda: 1)() == 1
        }

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_start = time.monotonic()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        record = self._snapshot(trainer, ("train/", "val/"))
        record = {k.removesuffix("_epoch"): v for k, v in record.items()}
        record["epoch"] = trainer.current_epoch
        self.metrics.append(record)
        shown = key_metrics(record)
        logger.info(
            "epoch %d/%d done in %.1f s: %s",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            time.monotonic() - self._epoch_start,
            "  ".join(f"{k}={v:.4f}" for k, v in shown.items()),
        )

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metrics.append(self._snapshot(trainer, ("test/",)))

    def state_dict(self) -> dict[str, Any]:
        return {"metrics": self.metrics}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.metrics = list(state_dict.get("metrics", []))


class ProgressCallback(pl.Callback):
    """Keeps the step's progress record current: phase, epoch, batch, the last epoch's key metrics
    and an ETA, at most every ``interval_s`` seconds and at each epoch's end (see :mod:`mml_core.progress`).

    The ETA extrapolates the batches per second of this process (a resumed step counts from its
    resumption), validation time included.
    """

    def __init__(self, path: Path, interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        self._written = -math.inf
        self._origin: tuple[float, int] | None = None
        self._metrics: dict[str, float] = {}

    @staticmethod
    def _position(trainer: pl.Trainer, in_epoch: int) -> tuple[float, float]:
        """Training batches done (all epochs) and in total; the total is inf where it is unknown."""
        per_epoch = trainer.num_training_batches
        if not math.isfinite(per_epoch) or not trainer.max_epochs or trainer.max_epochs < 0:
            return in_epoch, math.inf
        return trainer.current_epoch * per_epoch + in_epoch, per_epoch * trainer.max_epochs

    def _eta(self, done: float, total: float) -> float | None:
        if self._origin is None or not math.isfinite(total):
            return None
        started, first = self._origin
        elapsed, progressed = time.monotonic() - started, done - first
        return (total - done) * elapsed / progressed if progressed > 0 and elapsed > 0 else None

    def _write(self, trainer: pl.Trainer, in_epoch: int, force: bool = False, **fields: Any) -> None:
        now = time.monotonic()
        if force or now - self._written >= self.interval_s:
            done, total = self._position(trainer, in_epoch)
            update_progress(
                self.path, phase="train", epoch=trainer.current_epoch + 1, max_epochs=trainer.max_epochs,
                metrics=self._metrics, eta_s=self._eta(done, total), **fields,
            )  # fmt: skip
            self._written = now

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:  # fmt: skip
        if self._origin is None:
            self._origin = (time.monotonic(), self._position(trainer, batch_idx + 1)[0])
        batches = trainer.num_training_batches
        self._write(trainer, batch_idx + 1, batch=batch_idx + 1, batches=batches if math.isfinite(batches) else None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        record = MetricsTrackerCallback._snapshot(trainer, ("train/", "val/"))
        self._metrics = key_metrics({k.removesuffix("_epoch"): v for k, v in record.items()})
        batches = trainer.num_training_batches
        done = int(batches) if math.isfinite(batches) else 0
        self._write(trainer, done, force=True, **({"batch": done} if done else {}))

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        now = time.monotonic()
        if now - self._written >= self.interval_s:
            batches = trainer.num_test_batches[dataloader_idx] if trainer.num_test_batches else math.inf
            update_progress(self.path, phase="test", batch=batch_idx + 1,
                            batches=batches if math.isfinite(batches) else None)  # fmt: skip
            self._written = now
