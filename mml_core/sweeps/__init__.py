"""Sweeps and hyperparameter search as file targets (MML's ``search_space``, ``hpo`` and ``use_best_params``).

A config with a non-empty ``search_space`` is a sweep: every trial is an experiment of its own
under ``results/<proj>/trials/<trial>/`` whose steps are Snakemake targets, so a sweep resumes,
runs trials in parallel and goes to SLURM as one experiment does. ``hpo.sampler: grid`` runs every
combination; ``tpe`` and ``random`` run an Optuna study in persistent storage, asked in batches of
``hpo.n_jobs`` and told each trial's ``return_value``. The summary (``results/<proj>/sweep.*``)
names the best trial; ``use_best_params`` runs an experiment with its params.

Layers: this package sits between the job side (``mml_core.jobs``, the Snakefile) and
``mml_core.schedulers``, whose ``Plan`` it builds per trial. Optuna is imported only where a study
is used (planning an Optuna sweep, its batch jobs and the summary's plots), never torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mml_core.config import from_snakemake
from mml_core.results.outputs import SUMMARY_JSON
from mml_core.schedulers.plan import Plan
from mml_core.schedulers.registry import build_scheduler
from mml_core.schedulers.steps import StepLayout
from mml_core.sweeps import outputs
from mml_core.sweeps.best import best_params_source, with_best_params
from mml_core.sweeps.plan import SweepPlan
from mml_core.sweeps.space import SearchSpaceError
from mml_core.sweeps.study import SweepError

__all__ = ["SearchSpaceError", "SweepError", "SweepPlan", "build_plan", "summary_path"]


def build_plan(
    config: Mapping | DictConfig, may_ask: bool = False, checkpoints: Any = None
) -> Plan | SweepPlan:
    """The plan of a config: one experiment, one with a finished sweep's best params, or a sweep.

    ``may_ask`` and ``checkpoints`` (Snakemake's): see :class:`SweepPlan`.
    """
    cfg = from_snakemake(config)
    if best_params_source(cfg) is not None:
        return Plan(build_scheduler(with_best_params(cfg)))
    if cfg.search_space:
        return SweepPlan(cfg, may_ask=may_ask, checkpoints=checkpoints)
    return Plan(build_scheduler(cfg))


def summary_path(config: Mapping | DictConfig) -> Path:
    """The file that holds a run's ``return_value``: the experiment's ``summary.json``, or a sweep's
    ``sweep.json`` (its best trial's)."""
    cfg = from_snakemake(config)
    root = StepLayout.of_config(cfg).root
    if cfg.search_space and best_params_source(cfg) is None:
        return root / outputs.SWEEP_JSON
    return root / SUMMARY_JSON
