"""Callbacks shared by every training step: metrics history with a log line per epoch."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl

logger = logging.getLogger(__name__)


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
        shown = {k: v for k, v in record.items() if k.endswith(("loss", "/acc"))}
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
