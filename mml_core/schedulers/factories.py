"""The Lightning factories behind the scheduler's ``create_*`` methods: which config keys build what.

Every job builds its data, model and trainer here, from the scheduler's read-only plain config,
so all steps of an experiment build them the same way. torch and Lightning are imported inside
the functions: the planner imports this module without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mml_core.config import MisconfigurationError
from mml_core.tasks import TaskStruct, TaskStructFactory

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from mml_core.data.datamodule import MultiTaskDataModule
    from mml_core.training.callbacks import MetricsTrackerCallback


def build_datamodule(
    cfg: Mapping[str, Any], factory: TaskStructFactory, structs: Sequence[TaskStruct], fold: int
) -> MultiTaskDataModule:
    """The datamodule over ``structs`` (the first is the pivot) with ``fold`` as validation split (``sampling``)."""
    from mml_core.data.datamodule import MultiTaskDataModule

    sampling = cfg["sampling"]
    return MultiTaskDataModule(
        task_structs=list(structs),
        descriptions={s.name: factory.load_description(s.name) for s in structs},
        fold=fold,
        batch_size=sampling["batch_size"],
        num_workers=sampling["num_workers"],
        cache=sampling["enable_caching"],
        seed=cfg["seed"],
    )


def build_model(
    cfg: Mapping[str, Any], structs: Sequence[TaskStruct], task_weights: Sequence[float] | None
) -> pl.LightningModule:
    """The ``arch`` backbone with one head per task of ``structs`` (``optimizer``, ``lr_scheduler``)."""
    from mml_core.models.backbones import build_backbone
    from mml_core.models.module import MultiTaskModule

    unsupported = [s.name for s in structs if s.task_type != "classification"]
    if unsupported:
        raise MisconfigurationError(
            f"Tasks {unsupported} are not classification tasks; mml_core trains classification tasks only."
        )
    # the pivot's image size (datasets resize each task to its largest images; RGB as in MML)
    sizes = structs[0].sizes
    image_size = min(int(sizes.get("max_height") or 224), int(sizes.get("max_width") or 224))
    return MultiTaskModule(
        backbone=build_backbone(cfg["arch"], in_channels=3, image_size=image_size),
        task_classes={s.name: s.num_classes for s in structs},
        task_weights=list(task_weights) if task_weights else None,
        optimizer=cfg["optimizer"],
        lr_scheduler=cfg["lr_scheduler"],
    )


def build_trainer(
    cfg: Mapping[str, Any],
    checkpoint_dir: Path,
    log_dir: Path,
    run_name: str,
    monitor: tuple[str, str] | None,
    metrics_callback: bool,
) -> tuple[pl.Trainer, Any, MetricsTrackerCallback | None]:
    """The trainer of ``trainer`` with the callbacks of ``cbs`` and the logger of ``logging.exp_logger``."""
    from mml_core.training.trainer import build_trainer as build

    return build(
        trainer_cfg=cfg["trainer"],
        callbacks_cfg=cfg["cbs"],
        logger_cfg=cfg["logging"]["exp_logger"],
        checkpoint_dir=checkpoint_dir,
        log_dir=log_dir,
        run_name=run_name,
        seed=cfg["seed"],
        monitor=monitor,
        metrics_callback=metrics_callback,
    )


def tune(
    cfg: Mapping[str, Any],
    trainer: pl.Trainer,
    model: pl.LightningModule,
    datamodule: pl.LightningDataModule | None,
    train_dataloaders: Any = None,
) -> None:
    """Lightning's batch-size and LR search as ``tune`` asks."""
    from mml_core.training.trainer import tune as run_tuner

    run_tuner(trainer, model, datamodule, cfg["tune"], train_dataloaders)
