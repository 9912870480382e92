"""Schedulers: MML's ``AbstractBaseScheduler`` API, the ``TrainingScheduler``, the schedule -> rules
plan, and the job-side runner. Planning imports no torch."""

from mml_core.schedulers.base import AbstractBaseScheduler, MisconfigurationError, reads_config, step_name
from mml_core.schedulers.registry import SCHEDULERS, build_scheduler, scheduler_class
from mml_core.schedulers.training import TrainingScheduler

__all__ = [
    "SCHEDULERS",
    "AbstractBaseScheduler",
    "MisconfigurationError",
    "TrainingScheduler",
    "build_scheduler",
    "reads_config",
    "scheduler_class",
    "step_name",
]
