"""The Lightning factories behind the scheduler's ``create_*`` methods: which config keys build what.

Every job builds its data, model and trainer here, from the scheduler's read-only plain config,
so all steps of an experiment build them the same way. torch and Lightning are imported inside
the functions: the planner imports this module without them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mml_core.schedulers.steps import MLFLOW_STORE, StepLayout
from mml_core.tasks import TaskStruct, TaskStructFactory
from mml_core.tasks.types import TaskSpec, class_names

if TYPE_CHECKING:
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader

    from mml_core.data.dataset import TaskSplitDataset
    from mml_core.data.datamodule import MultiTaskDataModule
    from mml_core.data.transforms import ImagePipeline
    from mml_core.training.callbacks import MetricsTrackerCallback


def normalization(cfg: Mapping[str, Any], struct: TaskStruct) -> tuple[list[float], list[float]] | None:
    """Mean and std of ``augmentations.normalization``: imagenet, task (the task's statistics),
    pretraining (those the timm model, or a ``tu-`` encoder's timm model, was pretrained with) or null (none)."""
    from mml_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
    from mml_core.models.archs import SMP, TIMM_PREFIX, arch_kind, smp_encoder

    kind = cfg["augmentations"]["normalization"]
    if kind is None:
        return None
    if kind == "task":
        return [struct.means[c] for c in "rgb"], [struct.stds[c] or 1.0 for c in "rgb"]
    timm_name = cfg["arch"]["name"]
    if arch_kind(cfg["arch"]) == SMP:
        encoder = smp_encoder(cfg["arch"])
        timm_name = encoder.removeprefix(TIMM_PREFIX) if encoder.startswith(TIMM_PREFIX) else "small_cnn"
    if kind == "pretraining" and timm_name != "small_cnn":
        import timm

        pretrained = timm.get_pretrained_cfg(timm_name)
        if pretrained is not None:
            return list(pretrained.mean), list(pretrained.std)
    return list(IMAGENET_MEAN), list(IMAGENET_STD)


def image_pipelines(cfg: Mapping[str, Any], struct: TaskStruct, preprocessed: bool) -> dict[str, ImagePipeline]:
    """The ``train`` and ``eval`` pipelines of ``struct`` (see :mod:`mml_core.data.transforms`).

    The deterministic part: ``preprocessing.pipeline`` when the task is read from RAW although
    another ``preprocessing.id`` is asked for (on the fly, as MML); else, where the task's images
    differ in size, a resize to its largest size.
    """
    from mml_core.data.transforms import ImagePipeline, preprocessing_pipeline, resize_to

    fixed = None if preprocessed else preprocessing_pipeline(cfg["preprocessing"]["pipeline"])
    sizes = struct.sizes
    if fixed is None and (sizes.get("min_height") != sizes.get("max_height") or sizes.get("min_width") != sizes.get("max_width")):
        fixed = resize_to(int(sizes["max_height"]), int(sizes["max_width"]))
    mean, std = normalization(cfg, struct) or (None, None)
    augmentations = cfg["augmentations"]["cpu"]
    return {
        "train": ImagePipeline.augmented(
            augmentations.get("backend", "albumentations"), augmentations.get("pipeline", []), fixed, mean, std
        ),
        "eval": ImagePipeline(fixed=fixed, mean=mean, std=std),
    }


def build_datamodule(
    cfg: Mapping[str, Any], factory: TaskStructFactory, structs: Sequence[TaskStruct], fold: int
) -> MultiTaskDataModule:
    """The datamodule over ``structs`` (the first is the pivot) with ``fold`` as validation split
    (``sampling``, ``preprocessing``, ``augmentations``)."""
    from mml_core.data.datamodule import MultiTaskDataModule

    sampling = cfg["sampling"]
    preprocessing_id = cfg["preprocessing"]["id"]
    return MultiTaskDataModule(
        task_structs=list(structs),
        descriptions={s.name: factory.load_description(s.name) for s in structs},
        pipelines={s.name: image_pipelines(cfg, s, preprocessed=s.preprocessed == preprocessing_id) for s in structs},
        fold=fold,
        batch_size=sampling["batch_size"],
        num_workers=sampling["num_workers"],
        seed=cfg["seed"],
        balanced=sampling["balanced"],
        sample_num=sampling["sample_num"],
        drop_last=sampling["drop_last"],
        cache=sampling["enable_caching"],
        cache_max_size=sampling["cache_max_size"],
    )


def build_split_datasets(
    cfg: Mapping[str, Any], factory: TaskStructFactory, struct: TaskStruct, fold: int
) -> dict[str, TaskSplitDataset]:
    """The datasets of every split of ``struct`` for ``fold``, without Lightning (prediction)."""
    from mml_core.data.loaders import split_datasets

    pipelines = image_pipelines(cfg, struct, preprocessed=struct.preprocessed == cfg["preprocessing"]["id"])
    return split_datasets(
        factory.load_description(struct.name), Path(struct.paths["dataset_root"]), pipelines, fold, cfg["seed"]
    )


def build_eval_loader(cfg: Mapping[str, Any], dataset: TaskSplitDataset) -> DataLoader:
    """The DataLoader that evaluates ``dataset`` in order with ``sampling.batch_size`` and ``num_workers``."""
    from mml_core.data.loaders import eval_loader

    return eval_loader(dataset, cfg["sampling"]["batch_size"], cfg["sampling"]["num_workers"])


def task_specs(structs: Sequence[TaskStruct]) -> list[TaskSpec]:
    """What the network and module need of each task: name, type, classes."""
    return [TaskSpec.of(s.name, s.task_type, s.idx_to_class) for s in structs]


def build_network(cfg: Mapping[str, Any], structs: Sequence[TaskStruct], pretrained: bool = True) -> torch.nn.Module:
    """The ``arch`` network with one head per task of ``structs`` (a timm backbone, or segmentation_models_pytorch
    where ``arch.arch`` is set); pretrained weights from disk where ``arch.pretrained`` asks and ``pretrained``
    (False: trained weights are loaded right after)."""
    from mml_core.models.archs import SMP, arch_kind, check_task_types

    check_task_types(cfg, {s.name: s.task_type for s in structs})
    arch = dict(cfg["arch"], pretrained=cfg["arch"]["pretrained"] and pretrained)
    if arch_kind(arch) == SMP:
        from mml_core.models.smp import build_smp_network

        return build_smp_network(arch, task_specs(structs))
    from mml_core.models.backbones import build_backbone
    from mml_core.models.network import MultiTaskNetwork

    return MultiTaskNetwork(build_backbone(arch), task_specs(structs), drop_rate=arch["drop_rate"])


def build_model(
    cfg: Mapping[str, Any], structs: Sequence[TaskStruct], task_weights: Sequence[float] | None, pretrained: bool = True
) -> pl.LightningModule:
    """The LightningModule training :func:`build_network` with the ``loss``, ``optimizer`` and ``lr_scheduler``."""
    from mml_core.models.losses import task_loss
    from mml_core.models.module import MultiTaskModule

    criteria = [
        task_loss(cfg["loss"], s.task_type, [s.class_occ.get(name, 0) for name in class_names(s.idx_to_class)],
                  balanced=cfg["sampling"]["balanced"])
        for s in structs
    ]  # fmt: skip
    return MultiTaskModule(
        network=build_network(cfg, structs, pretrained),
        criteria=criteria,
        task_weights=list(task_weights) if task_weights else None,
        optimizer=cfg["optimizer"],
        lr_scheduler=cfg["lr_scheduler"],
    )


def build_trainer(
    cfg: Mapping[str, Any],
    layout: StepLayout,
    step: str,
    checkpoint_dir: Path,
    monitor: tuple[str, str] | None,
    metrics_callback: bool,
) -> tuple[pl.Trainer, Any, MetricsTrackerCallback | None]:
    """The trainer of ``trainer`` with the callbacks of ``cbs`` and the loggers of ``logging.exp_logger``
    (the whole config and the step name as hyperparameters); it checkpoints to ``checkpoint_dir`` and
    reports progress where ``layout`` keeps the files of ``step``."""
    from mml_core.config.record import flatten
    from mml_core.training.loggers import LoggerPlaces
    from mml_core.training.trainer import build_trainer as build

    places = LoggerPlaces(
        proj=cfg["proj"], step=step, csv_dir=layout.logs_dir, tensorboard_dir=layout.tensorboard_dir,
        mlflow_store=MLFLOW_STORE,
    )  # fmt: skip
    return build(
        trainer_cfg=cfg["trainer"],
        callbacks_cfg=cfg["cbs"],
        logger_cfg=cfg["logging"]["exp_logger"],
        checkpoint_dir=checkpoint_dir,
        loggers=places,
        hparams={**flatten(cfg), "step": step},
        seed=cfg["seed"],
        monitor=monitor,
        metrics_callback=metrics_callback,
        progress_file=layout.progress(step),
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
