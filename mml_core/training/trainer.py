"""The one place a ``pytorch_lightning.Trainer`` is built from config, and checkpoints are found."""

from __future__ import annotations

import datetime
import inspect
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from lightning_fabric.plugins.environments import SLURMEnvironment
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar

from mml_core.config import instantiate, locate
from mml_core.training.callbacks import MetricsTrackerCallback
from mml_core.training.resume import AtomicCheckpointIO, ResumeCallback, find_resume_checkpoint

logger = logging.getLogger(__name__)

TIME_BACKUP = "time_backup.ckpt"
BACKUP_INTERVAL = datetime.timedelta(minutes=30)


def build_trainer(
    trainer_cfg: Mapping[str, Any],
    callbacks_cfg: Mapping[str, Mapping[str, Any]],
    logger_cfg: Mapping[str, Any] | None,
    checkpoint_dir: Path,
    log_dir: Path,
    run_name: str,
    seed: int,
    monitor: tuple[str, str] | None = None,
    metrics_callback: bool = False,
) -> tuple[pl.Trainer, ModelCheckpoint, MetricsTrackerCallback | None]:
    """Trainer with MML's default callbacks plus the configured ones.

    Checkpoints go to ``checkpoint_dir`` (written atomically): every epoch ``last.ckpt`` (and the
    best by ``monitor`` when given), ``time_backup.ckpt`` at least every 30 minutes so long epochs
    can resume, and ``interrupted.ckpt`` when SIGINT/SIGTERM stops training (see
    :mod:`mml_core.training.resume`). The experiment logger writes to ``log_dir/run_name``.
    """
    _check_accelerator(trainer_cfg)
    # Without a monitor, the top-1 file is the latest epoch's: named last.ckpt, it is the one file per
    # epoch (save_last too would write a second copy, 128 MiB and 0.3 s per epoch for resnet18; and
    # Lightning writes last.ckpt only in an epoch that also wrote a top-k file, so save_top_k=0
    # would write none).
    checkpoint_cb = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-epoch{epoch:03d}" if monitor else ModelCheckpoint.CHECKPOINT_NAME_LAST,
        monitor=monitor[0] if monitor else None,
        mode=monitor[1] if monitor else "min",
        save_top_k=1,
        save_last=bool(monitor),
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
    # after the tracker, so a stop at an epoch's end checkpoints that epoch's record too
    callbacks.append(ResumeCallback(seed=seed, checkpoint_dir=checkpoint_dir))
    plugins: list[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # Snakemake retries a stopped job and the retry resumes; Lightning must not also requeue it
        plugins.append(SLURMEnvironment(auto_requeue=False))
    trainer = pl.Trainer(
        **dict(trainer_cfg),
        logger=build_logger(logger_cfg, log_dir, run_name),
        callbacks=callbacks,
        enable_checkpointing=True,
        default_root_dir=str(checkpoint_dir),
        plugins=plugins,
    )
    return trainer, checkpoint_cb, tracker


def build_logger(logger_cfg: Mapping[str, Any] | None, log_dir: Path, run_name: str) -> Any:
    """The configured experiment logger, writing below ``log_dir/run_name``; False for none.

    No version is forced: loggers number their runs (``version_0``, ``version_1``...), so a resumed
    or rerun step adds a version instead of overwriting the log of the interrupted attempt.
    """
    if not logger_cfg or not logger_cfg.get("_target_"):
        return False
    params = inspect.signature(locate(logger_cfg["_target_"])).parameters
    defaults = {"save_dir": str(log_dir), "name": run_name}
    return instantiate(logger_cfg, **{k: v for k, v in defaults.items() if k in params and k not in logger_cfg})


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest usable checkpoint in ``checkpoint_dir`` (corrupt ones are moved aside), if any."""
    names = tuple(p.name for p in Path(checkpoint_dir).glob("*.ckpt") if not p.name.startswith("."))
    return find_resume_checkpoint(Path(checkpoint_dir), names)


def _check_accelerator(trainer_cfg: Mapping[str, Any]) -> None:
    """Refuse a GPU accelerator on a machine without one, before any work starts."""
    import torch

    accelerator = str(trainer_cfg.get("accelerator", "auto")).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"trainer.accelerator={accelerator} but no CUDA GPU is visible on this machine "
            f"({'CUDA_VISIBLE_DEVICES is empty' if _cuda_hidden() else 'torch.cuda.is_available() is False'}). "
            "Use --config 'trainer={accelerator: cpu}' here, or run on a GPU node."
        )


def _cuda_hidden() -> bool:
    return os.environ.get("CUDA_VISIBLE_DEVICES", None) == ""


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
