"""MML's config keys and spellings as mml_core reads them: the one list of what MML has and mml_core lacks.

An MML user's command line (or an MML run's ``.hydra/config.yaml``) carries MML's spellings and
keys this project does not have. Every config passes through :func:`translate_mml` before it is
validated, whichever way it was given (``snakemake --config``/``--configfile``, ``mml-snake``,
``load_config``):

- MML's spellings keep MML's meaning: ``mode.multitask=false`` is 0 (the pivot alone),
  ``pivot.name=false`` and ``tagging.all=false`` or ``''`` are none, ``arch.weights=imagenet``
  (arch=smp) is none (with ``arch.pretrained``: the encoder's weights from the local cache), ``mode.scheduler`` given as
  MML's ``{_target_: ...}`` names the scheduler, ``continue=latest`` is what a plain rerun does here;
- a key of MML that mml_core lacks (:data:`UNSUPPORTED`) is dropped with a warning while it holds
  MML's default, and otherwise stops with "MML key X is not supported by mml_core: <what instead>".

Only keys the schema does not accept are looked up here, so a key that later joins the schema
(as MML's ``hpo`` and ``search_space`` did with sweeps) leaves this table's reach by itself.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from mml_core.config.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Unsupported:
    """An MML key mml_core does not have: MML's default (accepted, then dropped) and what to do instead."""

    default: Any
    instead: str
    # further values MML writes for the key (e.g. another architecture's _target_), accepted like the default
    also: tuple[Any, ...] = ()


_RESULTS = (
    "results go to results/<proj>/ below the working directory: run in the directory that should hold them "
    "(or pass snakemake's --directory)"
)
_REUSE = "only reuse.models is supported (models of earlier projects, for predict, test and mode=tl)"

_METRICS = (
    "each task type's metrics are fixed: MML's defaults and more (README, 'Every MML task type'); only "
    "metrics.bootstrap is set; drop the key"
)
# MML's metrics group: the default metric list of each task type (loss/metrics route), as MML writes it
_MML_METRICS: dict[str, list[dict[str, Any]]] = yaml.safe_load("""
cls:
  - {_target_: torchmetrics.classification.MulticlassAccuracy, average: macro, num_classes: 0}
  - {_target_: torchmetrics.classification.MulticlassF1Score, average: macro, num_classes: 0}
  - {_target_: torchmetrics.classification.MulticlassAveragePrecision, average: macro, num_classes: 0}
  - {_target_: torchmetrics.classification.MulticlassAUROC, average: macro, num_classes: 0}
  - {_target_: torchmetrics.classification.MulticlassMatthewsCorrCoef, num_classes: 0}
  - {_target_: torchmetrics.classification.MulticlassPrecision, num_classes: 0, average: macro}
  - {_target_: torchmetrics.classification.MulticlassRecall, num_classes: 0, average: macro}
  - {_target_: torchmetrics.classification.MulticlassCalibrationError, num_classes: 0}
mlcls:
  - {_target_: torchmetrics.classification.MultilabelAveragePrecision, average: macro, num_classes: 0}
  - {_target_: torchmetrics.classification.MultilabelRankingAveragePrecision, num_classes: 0}
  - {_target_: torchmetrics.classification.MultilabelCoverageError, num_classes: 0}
reg:
  - {_target_: torchmetrics.regression.MeanSquaredError}
  - {_target_: torchmetrics.regression.SpearmanCorrCoef}
seg:
  - {_target_: torchmetrics.classification.Dice, average: macro, mdmc_average: samplewise, num_classes: 0,
     ignore_index: 255}
""")

# dotted key -> MML's default and what to do instead; MML 1.0.4's config tree
UNSUPPORTED: dict[str, Unsupported] = {
    "allow_gpu": Unsupported(True, "GPUs are used as trainer.accelerator says (resources.<command>.gpu for "
                                   "several jobs at once); drop the key"),
    "proj_path": Unsupported(None, _RESULTS),
    "out_dir": Unsupported(None, _RESULTS),
    "num_workers": Unsupported(None, "set sampling.num_workers (DataLoader workers per training step)"),
    "compile": Unsupported({"enable": False, "kwargs": {"mode": "reduce-overhead"}},
                           "torch.compile is not used; drop the compile group"),
    "loaders": Unsupported(
        {kind: {"_target_": f"mml.core.data_loading.modality_loaders.{cls}"} for kind, cls in (
            ("image", "OpenCVImageLoader"), ("mask", "OpenCVMaskLoader"), ("class", "ClassLoader"),
            ("classes", "MultiLabelClassLoader"), ("soft_classes", "SoftLabelClassLoader"), ("value", "ValueLoader"))},
        "images of any size and mode are read by mml_core.tasks.images (Pillow); drop the loaders group"),
    "tta": Unsupported({"mode": "mean", "variations": {}}, "test-time augmentation is not supported; drop the tta group"),
    "remove": Unsupported(
        dict.fromkeys(("backup", "blueprint", "img_examples", "models", "parameters", "pipeline", "predictions",
                       "sample_grid"), False),
        "mml_core never deletes results; remove results/<proj>/checkpoints/ or model.pt files yourself once "
        "they are no longer needed"),
    "logging.notifier": Unsupported(
        {"dummy": {"_target_": "mml.core.scripts.notifier.DummyNotifier", "on_start": False, "on_end": False,
                   "on_failure": False}},
        "there are no notifiers: follow results/<proj>/logs/, or let SLURM mail you (slurm_extra in the profile)"),
    "logging.render": Unsupported({"rich": False}, "job logs are plain text in results/<proj>/logs/"),
    "logging.capture_warnings": Unsupported(True, "warnings always land in the job's log"),
    "logging.samples": Unsupported(0, "no sample images are logged"),
    "logging.cm": Unsupported(False, "finish_exp always plots confusion matrices (results/<proj>/plots/)"),
    "reuse.blueprint": Unsupported(None, _REUSE),
    "reuse.parameters": Unsupported(None, _REUSE),
    "reuse.pipeline": Unsupported(None, _REUSE),
    "reuse.ensemble": Unsupported(None, _REUSE),
    "mode.use_blueprint": Unsupported(False, "blueprints are not supported; set the pipeline's keys directly"),
    "mode.pipeline_keys": Unsupported(
        ["arch", "augmentations", "cbs", "loss", "lr_scheduler", "mode", "optimizer", "preprocessing", "sampling",
         "trainer", "tta", "tune"],
        "every step records the whole config it ran with (results/<proj>/configs/)"),
    "trainer._target_": Unsupported("lightning.Trainer", "the trainer is always Lightning's Trainer; drop the key"),
    "arch._target_": Unsupported(
        "mml.core.models.timm.TimmGenericModel",
        "arch.name picks the backbone (a timm model or small_cnn), arch.arch a segmentation_models_pytorch "
        "architecture (MML's arch=smp), and mml_core builds the network; drop the key",
        also=("mml.core.models.smp.SMPGenericModel",)),
    **{f"metrics.{route}": Unsupported(default, _METRICS) for route, default in _MML_METRICS.items()},
}

# MML's spellings of "none" / "off" -> the value mml_core uses (matched by type and value: False is not 0)
SPELLINGS: dict[str, tuple[tuple[Any, ...], Any]] = {
    "mode.multitask": ((False,), 0),
    "pivot.name": ((False, ""), None),
    "tagging.all": ((False, ""), None),
    # MML's arch=smp: encoder weights named by smp; here pretrained weights come from disk (arch.weights: a file)
    "arch.weights": (("imagenet",), None),
}

# MML's scheduler classes -> mml_core's registered names
SCHEDULER_TARGETS = {
    "mml.core.scripts.schedulers.train_scheduler.TrainingScheduler": "train",
    "mml.core.scripts.schedulers.transfer_scheduler.TransferScheduler": "tl",
}

# MML's continue: False (off) and "latest" are what rerunning the same command does here
_CONTINUE = "continue"

# MML's modes (first argument of `mml`) that mml_core does not have, and what to use instead
UNSUPPORTED_MODES: dict[str, str] = {
    "create": "import tasks with `python -m mml_core.tasks import-folder ...` or `import-npz ...` (the demo tasks are "
              "written on first use)",
    "info": "list tasks with `python -m mml_core.tasks list --data-dir <data_dir>`; `snakemake -n` shows the plan",
    "clean": "mml_core writes no temporary task files; delete results/<proj>/checkpoints/ yourself",
    "post": "calibration and ensembling are not supported; predictions are in results/<proj>/steps/predict_fold--*/",
    "upgrade": "not needed: mml_core reads MML's task files and data roots as they are",
    "downgrade": "not needed: mml_core reads MML's task files and data roots as they are",
}


def _parsed(value: Any) -> Any:
    """Snakemake's strings ('false', '{enable: false}') as the YAML value they spell."""
    if not isinstance(value, str):
        return value
    try:
        return yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value


def _same(value: Any, expected: Any) -> bool:
    """Equal in type and value (recursively), so that MML's ``False`` never matches a ``0``."""
    if isinstance(expected, Mapping):
        return isinstance(value, Mapping) and value.keys() == expected.keys() and all(
            _same(value[k], expected[k]) for k in expected
        )
    if isinstance(expected, list):
        return isinstance(value, list) and len(value) == len(expected) and all(map(_same, value, expected))
    return type(value) is type(expected) and value == expected


def _is_default(value: Any, default: Any) -> bool:
    """``value`` is MML's default or, for a mapping, a part of it (``compile.enable=false``); None and {} are off."""
    if value is None or value == {}:
        return True
    if isinstance(default, Mapping) and isinstance(value, Mapping):
        return all(k in default and _is_default(v, default[k]) for k, v in value.items())
    return _same(value, default)


def unsupported_message(key: str, value: Any) -> str:
    """The message for MML key ``key`` set to a value mml_core cannot honour."""
    return f"MML key {key}={value!r} is not supported by mml_core: {UNSUPPORTED[key].instead}."


def _parent_and_leaf(config: dict, key: str) -> tuple[dict | None, str]:
    *path, leaf = key.split(".")
    node: Any = config
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def _scheduler_name(value: Any) -> Any:
    """MML's ``{_target_: package.module.Class}`` as a scheduler name; other values as they are."""
    parsed = _parsed(value)
    if not (isinstance(parsed, Mapping) and isinstance(parsed.get("_target_"), str)):
        return value
    target = parsed["_target_"]
    module, _, cls = target.rpartition(".")
    return SCHEDULER_TARGETS.get(target, f"{module}:{cls}")


def translate_mml(config: dict, accepted: Callable[[str], bool]) -> dict:
    """``config`` (plain containers, changed in place and returned) with MML's spellings and keys read.

    ``accepted(dotted_key)`` says whether the schema takes a key; only keys it refuses are treated
    as MML keys. Raises :class:`ConfigError` for an MML key whose value mml_core cannot honour.
    """
    for key, (spellings, meaning) in SPELLINGS.items():
        parent, leaf = _parent_and_leaf(config, key)
        if parent is not None and leaf in parent and any(_same(_parsed(parent[leaf]), s) for s in spellings):
            parent[leaf] = meaning
    mode = config.get("mode")
    if isinstance(mode, dict) and "scheduler" in mode:
        mode["scheduler"] = _scheduler_name(mode["scheduler"])
    if _CONTINUE in config and not accepted(_CONTINUE):
        value = _parsed(config.pop(_CONTINUE))
        if value not in (False, None, "latest"):
            raise ConfigError(
                f"MML key continue={value!r} is not supported by mml_core: there are no run folders to pick from; "
                "run the same command again and it continues where the last run stopped (continue=latest)."
            )
        if value == "latest":
            logger.info("continue=latest: rerunning the same command continues where the last run stopped.")
    for key, unsupported in UNSUPPORTED.items():
        parent, leaf = _parent_and_leaf(config, key)
        if parent is None or leaf not in parent or accepted(key):
            continue
        value = _parsed(parent[leaf])
        if not (_is_default(value, unsupported.default) or any(_same(value, v) for v in unsupported.also)):
            raise ConfigError(unsupported_message(key, value))
        del parent[leaf]
        logger.warning("Ignoring MML key %s (MML's default; mml_core has no such setting: %s).", key, unsupported.instead)
    return config
