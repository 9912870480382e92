"""Translate a scheduler's schedule into what the Snakemake rules need (no torch, no Snakemake).

``prepare_exp`` and ``finish_exp`` have declarative rules of their own
(``workflow/rules/experiment.smk``); every other command kind gets one generated rule whose output
pattern carries the step name in the wildcard ``step`` (``steps/{step}/metrics.json``, constrained
to the kind's names, e.g. ``train_fold--sk_digits_0``), so planning costs Snakemake's per-job floor
instead of one rule per step. The input function and the static params below answer per job.

Beyond Snakemake's own rules, planning keeps two promises about finished work. Data: every step
reads the data fingerprints of its tasks (:mod:`mml_core.tasks.fingerprint`), rewritten only when
a task's files changed, so new image content reruns the steps that read it. Completeness: a
finished step whose results were lost or truncated since (its record lists every file it wrote,
with sizes) is taken as done by Snakemake, which never reruns a step whose output is missing while
the steps after it are present and up to date; :meth:`Plan.repair` moves such a step's folder
aside and makes its ``metrics.json`` a target, so the step runs again and then every step that
read it. The summary and plots of the last complete finish_exp are kept (:meth:`Plan.keep_summary`)
and restored when a rerun of finish_exp fails (Snakemake deletes a job's outputs before it runs).

Jobs receive the config through one file, ``results/<proj>/configs/<hash>.json``: the validated
config exactly as planning saw it, written once before the first job runs (``onstart``, so a dry
run writes nothing) and named by its hash, so a job of an earlier plan still finds its own. The
shell line only names that file. Beside it go the same config as YAML and what it changes against
the default experiment, and copies of both as ``config.yaml`` and ``overrides.yaml`` in the results
folder (the latest run's, as Hydra writes them). Measured on 10,000 steps
(``benchmarks/planning.py``), the JSON as a derived param on the shell line cost 0.1 ms per job more
while planning and showed a multi-kilobyte blob in every failure message; Snakemake's ``script:``
costs ~1.2 ms per job more and imports Snakemake in every job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from mml_core.config import config_hash
from mml_core.config.record import config_yaml, overrides_yaml
from mml_core.io import atomic_write_text
from mml_core.results import outputs
from mml_core.schedulers import provenance
from mml_core.schedulers.base import AbstractBaseScheduler
from mml_core.schedulers.steps import TASK_WILDCARD, StepLayout, step_name_regex
from mml_core.tasks import split_task_name
from mml_core.tasks.fingerprint import DataFingerprint, data_fingerprint, write_fingerprint
from mml_core.tasks.index import NO_PREPROCESSING, task_file_path, version_path

logger = logging.getLogger(__name__)

__all__ = ["FINISH", "PREPARE", "Plan", "RuleSpec", "job_config_path", "write_config_file"]

PREPARE, FINISH = "prepare_exp", "finish_exp"


def job_config_path(job_config: Mapping[str, Any], workdir: Path = Path()) -> Path:
    """Where the jobs of the validated config ``job_config`` read it: ``results/<proj>/configs/<hash>.json``
    (a sweep's trial: ``results/<proj>/trials/<trial>/configs/<hash>.json``)."""
    return workdir / StepLayout.of_config(job_config).config_file(config_hash(job_config))


def write_config_file(job_config: Mapping[str, Any], workdir: Path = Path()) -> Path:
    """Write ``job_config`` where its jobs read it (once per distinct config; see the module docstring)."""
    path = job_config_path(job_config, workdir)
    if not path.is_file():
        atomic_write_text(path, json.dumps(job_config, sort_keys=True))
    return path


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
        # per base task (tags are applied in memory): its task file and its data fingerprint
        self.task_files = {split_task_name(t)[0]: factory.task_file(t) for t in scheduler.cfg.task_list}
        self.fingerprints = {base: str(self.layout.fingerprint(base)) for base in self.task_files}
        # the demo rule writes the demo tasks of the experiment that are missing (with those sharing their images)
        self.demo_outputs = [str(p) for p in factory.missing_demo_files(scheduler.cfg.task_list)]
        # MML's pp: (dataset, task) -> RAW task file, for every task that has a preprocessed version to write
        pp = self.preprocessing = scheduler.resolved_cfg["preprocessing"]
        self.preprocessing_id = pp["id"]
        self.preprocess_sources: dict[tuple[str, str], str] = {}
        if pp["id"] != NO_PREPROCESSING and pp["pipeline"]:
            for task in scheduler.cfg.task_list:
                raw = factory.raw_file(task)
                if raw is not None:
                    self.preprocess_sources[(raw.parent.name.removeprefix("DSET_"), raw.stem.removeprefix("TASK_"))] = str(raw)
        self.job_config = str(job_config_path(scheduler.job_config))

    @property
    def preprocessed_files(self) -> list[str]:
        """The task files ``snakemake pp`` writes (MML's preprocessed layout)."""
        return sorted(str(version_path(Path(raw), self.preprocessing_id)) for raw in self.preprocess_sources.values())

    def preprocess_pattern(self) -> str:
        """The output pattern of the preprocess rule (wildcards ``dataset`` and ``task``)."""
        return str(task_file_path(self.scheduler.task_factory.data_dir, "{dataset}", "{task}", self.preprocessing_id))

    @property
    def job_config_arg(self) -> str:
        """The job config file as the shell line of every step names it (a sweep's differs per trial)."""
        return self.job_config

    def write_run_config(
        self,
        configfiles: Sequence[str | Path] = (),
        command_line: Mapping[str, Any] | None = None,
        command: Sequence[str] = (),
    ) -> Path:
        """Write the config file the jobs read (:func:`write_config_file`) and the readable records of
        the run (see the module docstring); ``configfiles`` and ``command_line`` (``--config``) are what
        Snakemake was given, ``command`` the command line that started the run."""
        path = write_config_file(self.scheduler.job_config)
        config, layout = self.scheduler.job_config, self.layout
        digest = config_hash(config)
        readable = config_yaml(config)
        changed = overrides_yaml(config, configfiles, command_line, command)
        for target, text in (
            (layout.config_yaml(digest), readable), (layout.run_config, readable),
            (layout.config_overrides(digest), changed), (layout.run_overrides, changed),
        ):  # fmt: skip
            atomic_write_text(target, text)
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

    # labels the report adds to every output of finish_exp (a sweep: the trial)
    report_labels: dict[str, str] = {}
    # params the step rules add for the shell line (a sweep: the trial's config file)
    job_params: dict[str, Any] = {}

    @property
    def report_description(self) -> str:
        """The report's first page (Snakemake's ``report:``), written by finish_exp."""
        return self.finish_outputs()["description"]

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

    def step_inputs(self, wildcards: Any) -> list[str]:
        """The inputs of the generated rules' job ``step`` (their input function)."""
        return self.input_files(self.step(wildcards.step))

    def step(self, name: str) -> int:
        """Index of the step called ``name`` (a generated rule's ``step`` wildcard)."""
        if name not in self.index:
            raise KeyError(f"No step '{name}' in the schedule of {len(self.names)} steps, e.g. {self.names[:3]}.")
        return self.index[name]

    # -- per job ------------------------------------------------------------------------------

    @cached_property
    def _dependencies(self) -> list[list[int]]:
        return [self.scheduler.reads_steps(ix) for ix in range(len(self.names))]

    def dependencies(self, ix: int) -> list[int]:
        """Steps whose outputs step ``ix`` reads (:meth:`AbstractBaseScheduler.reads_steps`)."""
        return self._dependencies[ix]

    def inputs(self, ix: int) -> dict[str, list[str]]:
        """Named inputs of step ``ix``: ``deps`` (outputs of the steps it reads; a retrained fold
        reruns its prediction), ``data`` (the fingerprints of its tasks, so changed data reruns it) and
        ``files`` (files of other projects it reads, e.g. a reused model: ``step_input_files``)."""
        data = sorted({self.fingerprints[split_task_name(t)[0]] for t in self.scheduler.step_tasks(ix)})
        files = [str(path) for path in self.scheduler.step_input_files(ix)]
        return {"deps": [self._targets[d] for d in self.dependencies(ix)], "data": data, "files": files}

    def input_files(self, ix: int) -> list[str]:
        """The inputs of step ``ix`` as one list (:meth:`inputs` without the names)."""
        named = self.inputs(ix)
        return named["deps"] + named["data"] + named["files"]

    # -- data fingerprints ----------------------------------------------------------------------

    @property
    def fingerprint_pattern(self) -> str:
        """The output pattern of the data fingerprint rule (wildcard ``task``)."""
        return self.layout.fingerprint_pattern()

    @property
    def fingerprint_log(self) -> str:
        """The log pattern of the data fingerprint rule."""
        return str(self.layout.logs_dir / f"data_fingerprint-{{{TASK_WILDCARD}}}.log")

    @property
    def fingerprint_constraint(self) -> str:
        """The data fingerprint rule's constraint of ``task``: the base tasks of the experiment."""
        return "|".join(re.escape(task) for task in self.task_files)

    def fingerprint_source(self, wildcards: Any) -> str:
        """The task file a data fingerprint job reads (the rule's input function)."""
        return str(self.task_files[wildcards.task])

    def update_fingerprints(self, computed: dict[Path, DataFingerprint] | None = None) -> None:
        """Write the fingerprint of every task whose task file exists, where it is new or the files changed.

        ``computed``: fingerprints already taken in this process, by task file, and where new ones go
        (the trials of a sweep read the same data: parsing the task file and a stat of every file once).
        """
        computed = {} if computed is None else computed
        for base, task_file in self.task_files.items():
            if task_file.is_file():
                if task_file not in computed:
                    computed[task_file] = data_fingerprint(task_file, self.scheduler.task_factory.load_description(base))
                fingerprint = computed[task_file]
                if write_fingerprint(Path(self.fingerprints[base]), task_file, fingerprint):
                    logger.warning(
                        "The files of task %s changed since the last plan (%s or its %d image and mask files): the steps that read "
                        "it run again.", base, task_file, fingerprint.files,
                    )  # fmt: skip

    # -- finished steps whose results are incomplete ----------------------------------------------

    @cached_property
    def incomplete(self) -> dict[int, str]:
        """Finished steps whose results are incomplete (index -> why), in schedule order.

        A record that is unreadable or lists a file that is gone or has another size; or no record
        although a finished step recorded that it read this step's results (lost, or its rerun was
        interrupted after Snakemake deleted the old one). Reads every record: ~30 us per step.
        """
        present = [Path(target).is_file() for target in self._targets]
        problems: dict[int, str] = {}
        read: set[str] = set()
        for ix in (i for i, exists in enumerate(present) if exists):
            problem, inputs = provenance.record_problem(Path(self._targets[ix]), self.root)
            read.update(inputs)
            if problem:
                problems[ix] = problem
        for ix, name in enumerate(self.names):
            if not present[ix] and name in read:
                problems[ix] = "its metrics.json is missing, but finished steps read its results"
        return dict(sorted(problems.items()))

    def repair(self, dryrun: bool) -> list[str]:
        """Targets that make Snakemake redo every :attr:`incomplete` step, then the steps that read it.

        The folders of incomplete records are moved aside to ``steps/<step>.broken-<time>/`` first
        (kept, never deleted), so their targets are missing; a dry run moves nothing and only says
        what the run will redo.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for ix, why in self.incomplete.items():
            name = self.names[ix]
            action = "It runs again, then the steps that read it"
            if Path(self._targets[ix]).is_file():
                if dryrun:
                    action = "A run (not this dry run, which moves nothing) moves its folder aside and redoes it, then the steps that read it"
                else:
                    aside = self.layout.broken(name, stamp)
                    self.layout.step_dir(name).rename(aside)
                    why += f"; moved its folder to {aside}"
            logger.warning("Step %s is finished but incomplete: %s. %s.", name, why, action)
        return [self._targets[ix] for ix in self.incomplete]

    # -- the summary of the last complete finish_exp ----------------------------------------------

    def keep_summary(self) -> None:
        """Keep finish_exp's summary and plots in ``previous/`` (hard links) while they are complete."""
        finish = len(self.names) - 1
        if not Path(self._targets[finish]).is_file() or finish in self.incomplete:
            return
        kept = self.layout.previous_dir
        # built beside it and swapped in by renames; what a killed swap left is removed first
        for leftover in kept.parent.glob(f"{kept.name}.*-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        new, old = (kept.with_name(f"{kept.name}.{state}-{os.getpid()}") for state in ("new", "old"))
        for path in self.scheduler.step_files(finish):
            _link_or_copy(path, new / path.relative_to(self.root))
        if kept.exists():
            kept.rename(old)
        new.rename(kept)
        shutil.rmtree(old, ignore_errors=True)

    def restore_summary(self) -> list[Path]:
        """Put back the kept summary and plots where a failed finish_exp left none; return what was restored."""
        kept = self.layout.previous_dir
        restored = []
        for path in sorted(kept.rglob("*")) if kept.is_dir() else []:
            target = self.root / path.relative_to(kept)
            if path.is_file() and not target.exists():
                _link_or_copy(path, target)
                restored.append(target)
        if restored:
            logger.warning(
                "finish_exp did not complete: restored the summary and plots of the last complete run (%d files, "
                "kept in %s). The next run makes them anew.", len(restored), kept,
            )  # fmt: skip
        return restored

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


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link at ``target`` to ``source`` (a copy where the file system has none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
