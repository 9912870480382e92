"""Translate a scheduler's schedule into what the Snakemake rules need (no torch, no Snakemake).

``prepare_exp`` and ``finish_exp`` have declarative rules of their own
(``workflow/rules/experiment.smk``); every other command kind gets one generated rule whose output
pattern carries the step name in the wildcard ``step`` (``steps/{step}/metrics.json``, constrained
to the kind's names, e.g. ``train_fold--sk_digits_0``), so planning costs Snakemake's per-job floor
instead of one rule per step. The input function and the static params below answer per job.

Jobs receive the config through one file, ``results/<proj>/configs/<hash>.json``: the validated
config exactly as planning saw it, written once before the first job runs (``onstart``, so a dry
run writes nothing) and named by its hash, so a job of an earlier plan still finds its own. The
shell line only names that file. Measured on 10,000 steps (``benchmarks/planning.py``), the JSON
as a derived param on the shell line cost 0.1 ms per job more while planning and showed a
multi-kilobyte blob in every failure message; Snakemake's ``script:`` costs ~1.2 ms per job more
and imports Snakemake in every job.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from mml_core.config import config_hash
from mml_core.io import atomic_write_text
from mml_core.results import outputs
from mml_core.schedulers import provenance
from mml_core.schedulers.base import AbstractBaseScheduler
from mml_core.schedulers.steps import step_name_regex
from mml_core.tasks.index import NO_PREPROCESSING, task_file_path, version_path

__all__ = ["FINISH", "PREPARE", "Plan", "RuleSpec"]

PREPARE, FINISH = "prepare_exp", "finish_exp"


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """What the generated rule of one command kind declares."""

    kind: str
    output: str
    log: str
    # wildcard constraint: the names of this kind's steps
    names: str
    threads: int
    resources: dict[str, Any]
    # kinds earlier in the schedule win when cores are scarce: MML's order as the tie-breaker
    priority: int


class Plan:
    """The schedule as file targets: step outputs, dependencies, params slices, resources."""

    def __init__(self, scheduler: AbstractBaseScheduler):
        self.scheduler = scheduler
        self.layout = scheduler.layout
        self.root = self.layout.root
        self.names = scheduler.step_names
        self.index = {name: ix for ix, name in enumerate(self.names)}
        # built once: finish_exp and the input function of every job read them
        self._targets = [str(self.layout.metrics(name)) for name in self.names]
        self.kinds: dict[str, list[int]] = {}
        for ix, command in enumerate(scheduler.commands):
            self.kinds.setdefault(command.__name__, []).append(ix)
        factory = scheduler.task_factory
        self.task_files = {t: str(factory.task_file(t)) for t in scheduler.cfg.task_list}
        # the demo rule writes the demo tasks of the experiment that are missing (with those sharing their images)
        self.demo_outputs = [str(p) for p in factory.missing_demo_files(scheduler.cfg.task_list)]
        # MML's pp: (dataset, task) -> RAW task file, for every task that has a preprocessed version to write
        pp = scheduler.resolved_cfg["preprocessing"]
        self.preprocessing_id = pp["id"]
        self.preprocess_sources: dict[tuple[str, str], str] = {}
        if pp["id"] != NO_PREPROCESSING and pp["pipeline"]:
            for task in scheduler.cfg.task_list:
                raw = factory.raw_file(task)
                if raw is not None:
                    self.preprocess_sources[(raw.parent.name.removeprefix("DSET_"), raw.stem.removeprefix("TASK_"))] = str(raw)
        self._config_text = json.dumps(scheduler.job_config, sort_keys=True)
        self.job_config = str(self.root / "configs" / f"{config_hash(scheduler.job_config)}.json")

    @property
    def preprocessed_files(self) -> list[str]:
        """The task files ``snakemake pp`` writes (MML's preprocessed layout)."""
        return sorted(str(version_path(Path(raw), self.preprocessing_id)) for raw in self.preprocess_sources.values())

    def preprocess_pattern(self) -> str:
        """The output pattern of the preprocess rule (wildcards ``dataset`` and ``task``)."""
        return str(task_file_path(self.scheduler.task_factory.data_dir, "{dataset}", "{task}", self.preprocessing_id))

    def write_job_config(self) -> Path:
        """Write the config file the jobs read (once per distinct config; see the module docstring)."""
        path = Path(self.job_config)
        if not path.is_file():
            atomic_write_text(path, self._config_text)
        return path

    # -- targets ------------------------------------------------------------------------------

    def metrics_path(self, ix: int) -> str:
        """The Snakemake target of step ``ix``."""
        return self._targets[ix]

    def log_path(self, ix: int) -> str:
        """The job log of step ``ix``."""
        return str(self.layout.log(self.names[ix]))

    def finish_outputs(self) -> dict[str, str]:
        """finish_exp's outputs besides its metrics.json, by name (see :mod:`mml_core.results.outputs`)."""
        return {key: str(self.root / path) for key, path in outputs.FINISH_OUTPUTS.items()}

    @property
    def final_targets(self) -> list[str]:
        """What ``rule all`` asks for: every output of finish_exp, its metrics.json last."""
        return [*self.finish_outputs().values(), self.metrics_path(len(self.names) - 1)]

    def rules(self) -> list[RuleSpec]:
        """One spec per command kind between prepare_exp and finish_exp, in schedule order."""
        return [
            RuleSpec(
                kind=kind,
                output=self.layout.metrics_pattern(),
                log=self.layout.log_pattern(),
                names=step_name_regex(kind),
                threads=self.threads(kind),
                resources=self.resources(kind),
                priority=self.priority(kind),
            )
            for kind in self.kinds
            if kind not in (PREPARE, FINISH)
        ]

    def priority(self, kind: str) -> int:
        """Higher for kinds earlier in the schedule (prepare_exp highest)."""
        return len(self.kinds) - list(self.kinds).index(kind)

    def step(self, name: str) -> int:
        """Index of the step called ``name`` (a generated rule's ``step`` wildcard)."""
        if name not in self.index:
            raise KeyError(f"No step '{name}' in the schedule of {len(self.names)} steps, e.g. {self.names[:3]}.")
        return self.index[name]

    # -- per job ------------------------------------------------------------------------------

    @cached_property
    def _dependencies(self) -> list[list[int]]:
        last = len(self.names) - 1
        deps: list[list[int]] = [[]]
        for ix in range(1, last):
            declared = self.scheduler.step_dependencies(ix)
            deps.append(sorted(set(declared)) if declared is not None else [ix - 1])
        deps.append(list(range(last)))
        return deps

    def dependencies(self, ix: int) -> list[int]:
        """Steps whose outputs step ``ix`` reads.

        Declared by the scheduler (``step_dependencies``); without a declaration, the previous
        step (the seed's order). ``finish_exp`` reads every step. A scheduler that declares
        dependencies lists ``prepare_exp`` (index 0) only where a step reads what it wrote, so
        re-preparing (e.g. a task added to task_list) does not rerun finished steps.
        """
        return self._dependencies[ix]

    def inputs(self, ix: int) -> dict[str, list[str]]:
        """Named inputs of step ``ix``: ``deps`` (outputs of the steps it reads; a retrained fold
        reruns its prediction) and ``tasks`` (the task files, so changed data reruns the steps)."""
        tasks = sorted({self.task_files[t] for t in self.scheduler.step_tasks(ix)})
        return {"deps": [self._targets[d] for d in self.dependencies(ix)], "tasks": tasks}

    def input_files(self, ix: int) -> list[str]:
        """The inputs of step ``ix`` as one list (:meth:`inputs` without the names)."""
        named = self.inputs(ix)
        return named["deps"] + named["tasks"]

    def params(self, kind: str) -> dict[str, Any]:
        """What Snakemake's params trigger compares for every step of ``kind``: the config slice
        the command reads (the step's own identity is its output path)."""
        return self.scheduler.command_config(kind)

    def results_without_records(self) -> list[provenance.StepIdentity]:
        """Finished steps whose recorded config slice differs from the current one, when Snakemake
        keeps no records (``.snakemake/`` deleted, results copied from elsewhere).

        With records, Snakemake's params trigger reruns such steps; without, it would take them as
        done. Only then are the step files read, so planning stays cheap in the normal case.
        """
        records = Path(".snakemake") / "metadata"
        if records.is_dir() and any(records.iterdir()):
            return []
        current = [(self.scheduler.step_identity(ix), Path(self.metrics_path(ix))) for ix in range(len(self.names))]
        return provenance.stale_records(current)

    def _settings(self, kind: str) -> dict[str, Any]:
        res = self.scheduler.resolved_cfg["resources"]
        return {"threads": 1, "mem_mb": 1000, "runtime": 60, "gpu": 0, **res.get("default", {}), **res.get(kind, {})}

    def threads(self, kind: str) -> int:
        """Cores of one job of ``kind`` (``resources.<kind>.threads`` over ``resources.default``)."""
        return int(self._settings(kind)["threads"])

    def resources(self, kind: str) -> dict[str, Any]:
        """Snakemake resources of ``kind``: mem_mb, runtime, gpu, and the ``slurm_*`` keys only where
        the config sets them (else the profile's default applies)."""
        return {k: v for k, v in self._settings(kind).items() if k != "threads"}
