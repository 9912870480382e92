"""Translate a scheduler's schedule into what the Snakemake rules need (no torch, no Snakemake).

One rule per command kind: its output pattern carries the step's params in the wildcard
``params`` (``steps/train_fold{params}/metrics.json`` with ``params = "--sk_digits_0"``), so
planning costs Snakemake's per-job floor instead of one rule per step. ``workflow/rules/steps.smk``
turns :meth:`Plan.rules` into rules; the input and params functions below answer per job.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from mml_core.config import config_hash
from mml_core.schedulers.base import AbstractBaseScheduler
from mml_core.tasks import demo, split_task_name

PARAMS_REGEX = r"(--[^/]+)?"
PREPARE, FINISH = "prepare_exp", "finish_exp"


@dataclasses.dataclass(frozen=True)
class RuleSpec:
    """What one Snakemake rule of a command kind declares."""

    kind: str
    output: str
    log: str
    extra_outputs: tuple[str, ...]
    resources: dict[str, Any]
    # kinds earlier in the schedule win when cores are scarce: MML's order as the tie-breaker
    priority: int

    @property
    def name(self) -> str:
        """The step name as a Snakemake pattern (``train_fold{params}``)."""
        return self.kind + ("{params}" if "{params}" in self.output else "")


class Plan:
    """The schedule as file targets: step outputs, dependencies, params slices, resources."""

    def __init__(self, scheduler: AbstractBaseScheduler):
        self.scheduler = scheduler
        self.root = scheduler.results_dir
        self.names = scheduler.step_names
        self.index = {name: ix for ix, name in enumerate(self.names)}
        self.kinds: dict[str, list[int]] = {}
        for ix, command in enumerate(scheduler.commands):
            self.kinds.setdefault(command.__name__, []).append(ix)
        self.summary = str(self.root / "summary.json")
        factory = scheduler.task_factory
        self.task_files = {t: str(factory.task_file(t)) for t in scheduler.cfg.task_list}
        demo_used = any(split_task_name(t)[0] in demo.DEMO_TASKS for t in scheduler.cfg.task_list)
        missing = factory.missing_demo_files(scheduler.cfg.task_list)
        # the demo rule writes all demo tasks at once; declared only while one of them is missing
        self.demo_outputs = [str(p) for p in demo.demo_task_files(factory.data_dir).values()] if demo_used and missing else []

    @cached_property
    def config_json(self) -> str:
        """The validated experiment config as JSON: what each job rebuilds the scheduler from."""
        return json.dumps(self.scheduler.validated_config, sort_keys=True)

    # -- targets ------------------------------------------------------------------------------

    def metrics_path(self, ix: int) -> str:
        return str(self.root / "steps" / self.names[ix] / "metrics.json")

    @property
    def final_targets(self) -> list[str]:
        """What ``rule all`` asks for: the summary files and plots of finish_exp (its metrics.json last)."""
        from mml_core.results import outputs

        extra = [outputs.SUMMARY_CSV, outputs.SUMMARY_MD, outputs.FOLD_METRICS_PNG,
                 outputs.LEARNING_CURVES_DIR, outputs.CONFUSION_MATRIX_DIR]
        return [self.summary, *(str(self.root / name) for name in extra), self.metrics_path(len(self.names) - 1)]

    def rules(self) -> list[RuleSpec]:
        """One spec per command kind, in schedule order."""
        specs = []
        for rank, (kind, steps) in enumerate(self.kinds.items()):
            fixed = len(steps) == 1 and self.names[steps[0]] == kind
            suffix = "" if fixed else "{params}"
            specs.append(
                RuleSpec(
                    kind=kind,
                    output=str(self.root / "steps" / f"{kind}{suffix}" / "metrics.json"),
                    log=str(self.root / "logs" / f"{kind}{suffix}.log"),
                    extra_outputs=(self.summary,) if kind == FINISH else (),
                    resources=self.resources(kind),
                    priority=len(self.kinds) - rank,
                )
            )
        return specs

    def step(self, kind: str, params: str = "") -> int:
        """Index of the step matched by a rule's ``params`` wildcard (empty for fixed rules)."""
        name = kind + params
        if name not in self.index:
            raise KeyError(f"No step '{name}' in the schedule; known steps of {kind}: "
                           f"{[self.names[i] for i in self.kinds.get(kind, [])][:5]}")
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
        return {"deps": [self.metrics_path(d) for d in self.dependencies(ix)], "tasks": tasks}

    def params(self, kind: str) -> dict[str, Any]:
        """What Snakemake's params trigger compares for every step of ``kind``: the config slice
        the command reads (the step's own identity is its output path)."""
        return self.scheduler.command_config(kind)

    def results_without_records(self) -> list[tuple[str, str]]:
        """(command, step) of finished steps whose recorded config slice differs from the current one,
        when Snakemake keeps no records (``.snakemake/`` deleted, results copied from elsewhere).

        With records, Snakemake's params trigger reruns such steps; without, it would take them as
        done. Only then are the step files read, so planning stays cheap in the normal case.
        """
        records = Path(".snakemake") / "metadata"
        if records.is_dir() and any(records.iterdir()):
            return []
        hashes = {kind: config_hash(self.scheduler.command_config(kind)) for kind in self.kinds}
        stale = []
        for ix, name in enumerate(self.names):
            path = Path(self.metrics_path(ix))
            if path.is_file():
                kind = self.scheduler.commands[ix].__name__
                if json.loads(path.read_text()).get("config_hash") != hashes[kind]:
                    stale.append((kind, name))
        return stale

    def resources(self, kind: str) -> dict[str, Any]:
        """``resources.default`` overlaid with ``resources.<kind>``."""
        res = self.scheduler.resolved_cfg["resources"]
        return {**res.get("default", {}), **res.get(kind, {})}

