"""A sweep as file targets: every trial an experiment of its own, behind the interface of ``Plan``.

The rule files declare each rule once (``experiment.smk``: prepare_exp and finish_exp,
``steps.smk``: one rule per command kind). For one experiment they get a
:class:`~mml_core.schedulers.plan.Plan`; for a sweep a :class:`SweepPlan`, whose paths carry the
wildcard ``trial`` (``results/<proj>/trials/{trial}/steps/{step}/metrics.json``) and whose
per-trial answers (inputs, params, the job's config file) are functions of the wildcards, given
by the trial's own ``Plan``. So Snakemake resumes, parallelises and sends trials to SLURM as it
does steps, and a trial's rules are exactly an experiment's.

What all trials share comes from the *base* experiment (the config without its search space):
the step kinds with their threads, resources and priorities, the data root with its demo tasks
and preprocessing. Keys that would change those cannot be swept (:data:`~mml_core.sweeps.space.FIXED_KEYS`).

Grid trials are known while planning. Optuna trials appear batch by batch: the sweep summary's
input function walks the batches, asking each one (:class:`~mml_core.sweeps.study.SweepStudy`)
and waiting for its checkpoint ``hpo_batch`` (the job that tells the batch's results) before the
next; ``snakemake -n`` therefore shows the trials of the current batch.

The module is longer than most (about 380 lines) because ``SweepPlan`` answers the whole
interface the rule files ask of a ``Plan`` (a dozen short methods) besides the sweep's own rules.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mml_core.config import ConfigError, from_snakemake
from mml_core.schedulers import provenance
from mml_core.schedulers.base import NON_RESULT_KEYS
from mml_core.schedulers.plan import Plan, RuleSpec
from mml_core.schedulers.registry import build_scheduler
from mml_core.schedulers.steps import TASK_WILDCARD, StepLayout
from mml_core.sweeps import outputs
from mml_core.sweeps.space import SearchSpaceError, parse_space
from mml_core.sweeps.study import SweepStudy
from mml_core.tasks.fingerprint import DataFingerprint
from mml_core.sweeps.trials import Trial, grid_trials, optuna_name, trial_config

PRUNING_CALLBACK = "hpo_pruning"


class SweepPlan:
    """The trials of a sweep as file targets (see the module docstring); the rule files use it as a ``Plan``."""

    # the report tells the trials' summaries and plots apart by this label
    report_labels = {"trial": "{trial}"}

    def __init__(self, cfg: DictConfig, may_ask: bool = False, checkpoints: Any = None):
        """``may_ask``: this process plans the run (the main snakemake), so it may ask new trials;
        ``checkpoints``: Snakemake's, to wait for the batches of an Optuna study."""
        self.config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)
        self.hpo: dict[str, Any] = self.config["hpo"]
        self.dimensions = parse_space(self.config["search_space"])
        self.base = Plan(build_scheduler({**self.config, "search_space": {}}))
        self.root = self.base.root
        self.layout = self.base.layout
        # what all trials share (see the module docstring)
        self.names = self.base.names
        self.demo_outputs = self.base.demo_outputs
        self.preprocess_sources = self.base.preprocess_sources
        self.preprocessed_files = self.base.preprocessed_files
        self.preprocess_pattern = self.base.preprocess_pattern
        self.preprocessing = self.base.preprocessing
        self.priority, self.threads, self.resources = (
            self.base.priority,
            self.base.threads,
            self.base.resources,
        )
        self._pattern = StepLayout.of(self.config["proj"], "{trial}")
        self._may_ask = may_ask
        self._checkpoints = checkpoints
        self._plans: dict[str, Plan] = {}
        # what onstart gave write_run_config (None until the run starts)
        self._run_records: tuple[Sequence[str | Path], Mapping[str, Any] | None, Sequence[str]] | None = None
        # the data fingerprints taken while planning, by task file (None: this process does not plan)
        self._fingerprints: dict[Path, DataFingerprint] | None = None
        self.study: SweepStudy | None = None
        if self.hpo["sampler"] == "grid":
            if self.hpo["pruning"]:
                raise SearchSpaceError(
                    "hpo.pruning compares trials while they train, which needs an Optuna study: set hpo.sampler "
                    "to tpe or random, or hpo.pruning: false."
                )
            self._grid = {trial.name: trial for trial in grid_trials(self.dimensions)}
            limit = self.hpo["trials"]
            if limit is not None and len(self._grid) > limit:
                raise SearchSpaceError(
                    f"The grid has {len(self._grid)} combinations but hpo.trials={limit} allows fewer. Raise "
                    "hpo.trials (null: no limit) or give search_space fewer values."
                )
            self.trial_constraint = "|".join(re.escape(name) for name in self._grid)
            for name in self._grid:
                self.plan_of(name)
        else:
            if not self.hpo["trials"]:
                raise SearchSpaceError(
                    "hpo.trials must be the number of trials of an Optuna study (e.g. 20)."
                )
            self._check_values()
            self.study = SweepStudy(
                name=self.hpo["study_name"] or self.config["proj"],
                storage=self.hpo["storage"] or str(self.root / outputs.JOURNAL),
                direction=self.hpo["direction"],
                sampler=self.hpo["sampler"],
                seed=self.config["seed"],
                n_trials=self.hpo["trials"],
                n_jobs=self.hpo["n_jobs"],
                dimensions=self.dimensions,
                # what the trials' results depend on besides their params: a study continues only with it
                identity={"config": self._shared_config(), "pruning": self.hpo["pruning"]},
            )
            self.trial_constraint = r"trial-\d\d\d+"

    # -- trials ---------------------------------------------------------------------------------

    def _shared_config(self) -> dict[str, Any]:
        """The config all trials share, as a study records it: no swept key, nothing that never
        changes results (a study continues only while this stays the same)."""
        shared = {k: v for k, v in self.config.items() if k not in NON_RESULT_KEYS}
        for dimension in self.dimensions:
            *parents, last = dimension.key.split(".")
            node = shared
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(last, None)
        return shared

    def _check_values(self) -> None:
        """Before a study asks anything: every choice (and both bounds of an interval) must give a
        valid config, and the trial with the first values a schedule with the base's step kinds."""
        first = {d.key: d.values[0] for d in self.dimensions}
        for dimension in self.dimensions:
            for value in dimension.values:
                trial = Trial("probe", 0, {**first, dimension.key: value})
                self._validated(lambda trial=trial: from_snakemake(trial_config(self.config, trial)), trial)
        self._build(Trial("probe", 0, first))

    def _validated(self, build: Callable[[], Any], trial: Trial) -> Any:
        """``build()``, with a config error named as the search space's."""
        try:
            return build()
        except SearchSpaceError:
            raise
        except ConfigError as exc:
            keys = ", ".join(d.key for d in self.dimensions)
            raise SearchSpaceError(
                f"search_space ({keys}), trial {trial.name} {dict(trial.params)}: {exc}"
            ) from None

    def trials(self) -> list[Trial]:
        """The trials known now: the whole grid, or the Optuna trials asked so far."""
        if self.study is None:
            return list(self._grid.values())
        return [Trial(optuna_name(t.number), t.number, dict(t.params)) for t in self.study.trials()]

    def trial(self, name: str) -> Trial:
        """The trial called ``name``."""
        known = self._grid if self.study is None else {t.name: t for t in self.trials()}
        if name not in known:
            raise KeyError(f"No trial '{name}' in the sweep of {self.root} (known: {sorted(known)[:5]}).")
        return known[name]

    def _callbacks(self, trial: Trial) -> dict[str, Any]:
        pruning = self.hpo["pruning"]
        if not pruning or self.study is None:
            return {}
        pivot = self.base.scheduler.pivot
        if not pivot:
            raise SearchSpaceError("hpo.pruning watches the pivot's validation loss: set pivot.name.")
        pruner = pruning if isinstance(pruning, dict) else {"_target_": "optuna.pruners.MedianPruner"}
        return {
            PRUNING_CALLBACK: {
                "_target_": "mml_core.sweeps.pruning.OptunaPruning",
                "storage": self.study.storage, "study_name": self.study.name, "trial": trial.number,
                "monitor": f"val/{pivot}/loss", "pruner": pruner,
            }
        }  # fmt: skip

    def _build(self, trial: Trial) -> Plan:
        config = trial_config(self.config, trial, self._callbacks(trial))
        plan = self._validated(lambda: Plan(build_scheduler(config)), trial)
        extra = set(plan.kinds) - set(self.base.kinds)
        if extra:
            raise SearchSpaceError(
                f"Trial {trial.name} has steps of kind(s) {sorted(extra)} that the config without search_space has "
                "not: the sweep's rules are the base experiment's. Sweep keys that keep the step kinds."
            )
        return plan

    def plan_of(self, name: str) -> Plan:
        """The ``Plan`` of trial ``name`` (built once; its config file written once the run started)."""
        plan = self._plans.get(name)
        if plan is None:
            plan = self._plans[name] = self._build(self.trial(name))
            if self._fingerprints is not None:
                plan.update_fingerprints(self._fingerprints)
            if self._run_records is not None:
                plan.write_run_config(*self._run_records)
        return plan

    # -- what the rule files ask (as of a Plan) -------------------------------------------------

    def metrics_path(self, ix: int) -> str:
        """The target pattern of the step at ``ix`` (0 or -1: prepare_exp, finish_exp, named alike in every trial)."""
        return str(self._pattern.metrics(self.names[ix]))

    def log_path(self, ix: int) -> str:
        """The log pattern of the step at ``ix`` (see :meth:`metrics_path`)."""
        return str(self._pattern.log(self.names[ix]))

    def inputs(self, ix: int) -> dict[str, Callable[[Any], list[str]]]:
        """The named inputs of prepare_exp (0) or finish_exp (-1), per trial."""
        return {
            key: (lambda wildcards, key=key: self.plan_of(wildcards.trial).inputs(ix)[key])
            for key in ("deps", "data", "files")
        }

    def step_inputs(self, wildcards: Any) -> list[str]:
        """The inputs of the generated rules' job ``(trial, step)``."""
        plan = self.plan_of(wildcards.trial)
        return plan.input_files(plan.step(wildcards.step))

    def params(self, kind: str) -> Callable[[Any], dict[str, Any]]:
        """The config slice of ``kind`` per trial (Snakemake's params trigger compares it)."""
        return lambda wildcards: self.plan_of(wildcards.trial).params(kind)

    # the shell line names the trial's config file through the param job_config
    job_config_arg = "{params.job_config:q}"

    @property
    def job_params(self) -> dict[str, Callable[[Any, Any], str]]:
        """``job_config``, the trial's config file, as a params function of ``(wildcards, output)``:
        Snakemake counts such a function as derived from the output and leaves it out of the params
        trigger (the file's name changes with every config change; ``params.config`` decides what reruns)."""
        return {"job_config": lambda wildcards, output: self.plan_of(wildcards.trial).job_config}

    def finish_outputs(self) -> dict[str, str]:
        """finish_exp's outputs besides metrics.json, as patterns."""
        return {
            key: str(self._pattern.root / Path(path).relative_to(self.root))
            for key, path in self.base.finish_outputs().items()
        }

    def rules(self) -> list[RuleSpec]:
        """The base experiment's generated rules with the trial patterns."""
        return [
            dataclasses.replace(spec, output=self._pattern.metrics_pattern(), log=self._pattern.log_pattern())
            for spec in self.base.rules()
        ]

    @property
    def final_targets(self) -> list[str] | Callable[[Any], list[str]]:
        """What ``rule all`` asks for: the sweep's summary and, for a study, every batch of it.

        The batches are asked for directly: Snakemake does not rerun a job whose output exists while
        its input function still waits for a checkpoint (the summary, when ``hpo.trials`` was
        raised); as targets of ``all`` the new batches run, and then the summary sees them.
        """
        summary = list(self.summary_outputs().values())
        if self.study is None:
            return summary
        return lambda wildcards: summary + self.summary_inputs()["batches"]

    def results_without_records(self) -> list[provenance.StepIdentity]:
        """:meth:`Plan.results_without_records` of every trial planned so far."""
        return [stale for plan in self._plans.values() for stale in plan.results_without_records()]

    # -- data fingerprints, incomplete steps, kept summaries: every trial's own ----------------------

    @property
    def fingerprint_pattern(self) -> str:
        """The data fingerprint rule's output pattern: each trial keeps its own (``trial``, ``task``),
        since a swept key may change a trial's tasks or their files (task_list, preprocessing)."""
        return self._pattern.fingerprint_pattern()

    @property
    def fingerprint_log(self) -> str:
        """The data fingerprint rule's log pattern, in the trial's logs."""
        return str(self._pattern.logs_dir / f"data_fingerprint-{{{TASK_WILDCARD}}}.log")

    # any base task name (the trial wildcard keeps the pattern apart from the other rules')
    fingerprint_constraint = r"[^/]+"

    def fingerprint_source(self, wildcards: Any) -> str:
        """The task file trial ``wildcards.trial``'s data fingerprint job reads."""
        return str(self.plan_of(wildcards.trial).task_files[wildcards.task])

    def update_fingerprints(self) -> None:
        """:meth:`Plan.update_fingerprints` of every trial planned so far, and from now on of each
        trial when it is planned (an Optuna batch asked later), reading each task's files once;
        called only by the planning process."""
        self._fingerprints = {}
        for plan in self._plans.values():
            plan.update_fingerprints(self._fingerprints)

    def repair(self, dryrun: bool) -> list[str]:
        """:meth:`Plan.repair` of every trial planned so far."""
        return [target for plan in self._plans.values() for target in plan.repair(dryrun)]

    def keep_summary(self) -> None:
        """:meth:`Plan.keep_summary` of every trial planned so far."""
        for plan in self._plans.values():
            plan.keep_summary()

    def restore_summary(self) -> list[Path]:
        """:meth:`Plan.restore_summary` of every trial planned so far."""
        return [path for plan in self._plans.values() for path in plan.restore_summary()]

    def write_run_config(
        self, configfiles: Sequence[str | Path] = (), command_line: Mapping[str, Any] | None = None,
        command: Sequence[str] = (),
    ) -> None:
        """The run starts (``onstart``): write the trials asked while planning, then every trial's
        config file and records (:meth:`Plan.write_run_config`), now and for trials asked later."""
        if self.study is not None:
            self.study.commit()
        self._run_records = (configfiles, command_line, command)
        for plan in self._plans.values():
            plan.write_run_config(*self._run_records)

    # -- the sweep's own rules (workflow/rules/sweep.smk) -----------------------------------------

    def summary_outputs(self) -> dict[str, str]:
        """The sweep summary's files by name (:data:`~mml_core.sweeps.outputs.SUMMARY_OUTPUTS`)."""
        return {key: str(self.root / path) for key, path in outputs.SUMMARY_OUTPUTS.items()}

    @property
    def report_description(self) -> str:
        """The report's first page of a sweep, written by the sweep summary."""
        return self.summary_outputs()["description"]

    def trial_summary(self, name: str) -> str:
        """A trial's ``summary.json`` (an output of its finish_exp)."""
        return self.plan_of(name).finish_outputs()["summary"]

    @property
    def batch_pattern(self) -> str:
        """The batch job's output, the sweep's checkpoint: ``sweep/batches/{batch}.json``."""
        return str(self.root / outputs.BATCH_PATTERN)

    def _batch(self, index: int, ask: bool) -> list[Trial]:
        assert self.study is not None
        return [
            Trial(optuna_name(t.number), t.number, dict(t.params)) for t in self.study.batch(index, ask=ask)
        ]

    def summary_inputs(self, wildcards: Any = None) -> dict[str, list[str]]:
        """The sweep summary's named inputs: ``summaries`` of every trial and, for a study, the
        ``batches`` told so far; each next batch is asked once the one before is told (Snakemake's
        ``checkpoints``: ``get`` raises until the batch job ran, and Snakemake asks again after it)."""
        if self.study is None:
            return {"summaries": [self.trial_summary(name) for name in self._grid], "batches": []}
        summaries, markers = [], []
        index = 0
        while batch := self._batch(index, ask=self._may_ask):
            self._checkpoints.hpo_batch.get(batch=str(index))
            summaries += [self.trial_summary(t.name) for t in batch]
            markers.append(self.batch_pattern.format(batch=index))
            index += 1
        return {"summaries": summaries, "batches": markers}

    def batch_inputs(self, wildcards: Any) -> list[str]:
        """The summaries of batch ``wildcards.batch``'s trials."""
        return [self.trial_summary(t.name) for t in self._batch(int(wildcards.batch), ask=False)]

    def batch_trials(self, wildcards: Any) -> list[dict[str, Any]]:
        """Name and number of batch ``wildcards.batch``'s trials (the batch job tells them in this order)."""
        return [{"name": t.name, "number": t.number} for t in self._batch(int(wildcards.batch), ask=False)]

    def manifest(self, wildcards: Any = None) -> dict[str, Any]:
        """What the sweep summary reports besides the trials' results: the settings and every trial."""
        study = self.study
        return {
            "proj": self.config["proj"],
            "sampler": self.hpo["sampler"],
            "direction": self.hpo["direction"],
            "study": {"name": study.name, "storage": study.storage} if study is not None else None,
            "search_space": {d.key: d.source for d in self.dimensions},
            "trials": [
                {
                    "name": t.name,
                    "number": t.number,
                    "params": dict(t.params),
                    "summary": self.trial_summary(t.name),
                }
                for t in self.trials()
            ],
        }
