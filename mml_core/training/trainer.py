"""The one place a ``pytorch_lightning.Trainer`` is built from config, and checkpoints are found."""

from __future__ import annotations

import datetime
import inspect
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar

from mml_core.config import instantiate, locate
from mml_core.training.callbacks import MetricsTrackerCallback

logger = logging.getLogger(__name__)

LAST = "last.ckpt"
TIME_BACKUP = "time_backup.ckpt"
BACKUP_INTERVAL = datetime.timedelta(minutes=30)


def build_trainer(
    trainer_cfg: Mapping[str, Any],
    callbacks_cfg: Mapping[str, Mapping[str, Any]],
    logger_cfg: Mapping[str, Any] | None,
    checkpoint_dir: Path,
    log_dir: Path,
    run_name: str,
    monitor: tuple[str, str] | None = None,
    metrics_callback: bool = False,
) -> tuple[pl.Trainer, ModelCheckpoint, MetricsTrackerCallback | None]:
    """Trainer with MML's default callbacks plus the configured ones.

    Checkpoints go to ``checkpoint_dir``: every epoch ``last.ckpt`` (and the best by ``monitor``
    when given), plus ``time_backup.ckpt`` at least every 30 minutes so long epochs can resume.
    The experiment logger writes to ``log_dir/run_name``.
    """
    checkpoint_cb = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-epoch{epoch:03d}" if monitor else "epoch{epoch:03d}",
        monitor=monitor[0] if monitor else None,
        mode=monitor[1] if monitor else "min",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    time_cb = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename=TIME_BACKUP.removesuffix(".ckpt"),
        train_time_interval=BACKUP_INTERVAL,
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks: list[pl.Callback] = [checkpoint_cb, time_cb]
    if trainer_cfg.get("enable_progress_bar", True):
        callbacks.append(TQDMProgressBar(refresh_rate=max(1, int(trainer_cfg.get("log_every_n_steps") or 1))))
    tracker = MetricsTrackerCallback() if metrics_callback else None
    if tracker:
        callbacks.append(tracker)
    for name, spec in callbacks_cfg.items():
        logger.debug("Instantiating callback %s <%s>", name, spec["_target_"])
        callbacks.append(instantiate(spec))
    trainer = pl.Trainer(
        **dict(trainer_cfg),
        logger=build_logger(logger_cfg, log_dir, run_name),
        callbacks=callbacks,
        enable_checkpointing=True,
        default_root_dir=str(checkpoint_dir),
    )
    return trainer, checkpoint_cb, tracker


def build_logger(logger_cfg: Mapping[str, Any] | None, log_dir: Path, run_name: str) -> Any:
    """The configured experiment logger, writing below ``log_dir/run_name``; False for none."""
    if not logger_cfg or not logger_cfg.get("_target_"):
        return False
    params = inspect.signature(locate(logger_cfg["_target_"])).parameters
    defaults = {"save_dir": str(log_dir), "name": run_name, "version": ""}
    return instantiate(logger_cfg, **{k: v for k, v in defaults.items() if k in params and k not in logger_cfg})


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest of ``last.ckpt`` and ``time_backup.ckpt`` in ``checkpoint_dir``, if any."""
    candidates = [p for p in (Path(checkpoint_dir) / LAST, Path(checkpoint_dir) / TIME_BACKUP) if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def tune(
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule | None,
    tune_cfg: Mapping[str, Any],
    train_dataloaders: Any = None,
) -> None:
    """Lightning's batch-size scaling and LR finder as ``tune_cfg`` asks; results land in the objects."""
    from pytorch_lightning.tuner import Tuner

    if not (tune_cfg.get("lr") or tune_cfg.get("bs")):
        return
    tuner = Tuner(trainer)
    if tune_cfg.get("bs"):
        logger.info("Scaling the batch size (Lightning Tuner).")
        tuner.scale_batch_size(
            model, train_dataloaders=train_dataloaders, datamodule=datamodule, **dict(tune_cfg.get("bs_kwargs", {}))
        )
    if tune_cfg.get("lr"):
        logger.info("Searching the learning rate (Lightning Tuner).")
        finder = tuner.lr_find(
            model, train_dataloaders=train_dataloaders, datamodule=datamodule, **dict(tune_cfg.get("lr_kwargs", {}))
        )
        if finder is not None:
            logger.info("LR finder suggests lr=%s", finder.suggestion())
