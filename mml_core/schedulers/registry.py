"""Pick the scheduler class named by ``mode.scheduler`` and build it from a config."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping

from omegaconf import DictConfig

from mml_core.config import from_snakemake
from mml_core.schedulers.base import AbstractBaseScheduler, MisconfigurationError

SCHEDULERS = {
    "train": "mml_core.schedulers.training:TrainingScheduler",
    "tl": "mml_core.schedulers.transfer:TransferScheduler",
}


def scheduler_class(name: str) -> type[AbstractBaseScheduler]:
    """``"train"`` or ``"package.module:ClassName"`` (importable from the working directory)."""
    path = SCHEDULERS.get(name, name)
    module_name, sep, class_name = path.partition(":")
    if not sep:
        raise MisconfigurationError(
            f"Unknown mode.scheduler '{name}'. Use one of {sorted(SCHEDULERS)} or "
            "'package.module:ClassName' for your own AbstractBaseScheduler subclass."
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MisconfigurationError(
            f"mode.scheduler '{name}': cannot import module '{module_name}' ({exc}). Put it in the "
            "working directory or on PYTHONPATH."
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, AbstractBaseScheduler)):
        raise MisconfigurationError(
            f"mode.scheduler '{name}': '{class_name}' in {module_name} is not an AbstractBaseScheduler subclass."
        )
    return cls


def build_scheduler(config: Mapping | DictConfig) -> AbstractBaseScheduler:
    """Validate ``config`` (a Snakemake config dict or a loaded ``DictConfig``) and build its scheduler."""
    cfg = from_snakemake(config)
    return scheduler_class(cfg.mode.scheduler)(cfg)
