"""Step identity and file layout: the one place that names a step and spells its paths.

A *step* is one (command, params) pair of a schedule. Its name is MML's step naming without the
timestamp (``command--param1_param2``), stable across reruns, so an interrupted step finds its
checkpoints again. Every path of a step (its ``metrics.json`` target, its folder, checkpoints,
log, progress record), of the experiment's config records, data fingerprints and kept summary, and
the Snakemake patterns of the rules come from :class:`StepLayout`; no other module spells them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mml_core.progress import progress_of_log

# the part of a step name after the command: "" (no params) or "--p1_p2"; no "/" (it is a folder)
PARAMS_REGEX = r"(--[^/]+)?"
PARAMS_SEP = "--"
# the wildcard of the generated rules' patterns: the whole step name
STEP_WILDCARD = "step"
# the wildcard of the data fingerprint rule's pattern: a base task name
TASK_WILDCARD = "task"
METRICS = "metrics.json"
# the experiment loggers' stores shared by all projects of a working directory (MLflow experiment = proj)
MLFLOW_STORE = Path("results") / "mlruns"
# the trials of a sweep are experiments of their own under results/<proj>/trials/<trial>/
TRIALS_DIR = "trials"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+?=,@-]")


def step_name(command: str, params: Sequence[Any]) -> str:
    """``command--p1_p2`` (``command`` alone without params); unsafe path characters become ``-``."""
    if not params:
        return command
    return _UNSAFE.sub("-", f"{command}{PARAMS_SEP}{'_'.join(str(p) for p in params)}")


@dataclasses.dataclass(frozen=True)
class StepLayout:
    """Where the files of one experiment's steps live: everything under ``results/<proj>/``."""

    root: Path

    @classmethod
    def of(cls, proj: str, trial: str | None = None) -> StepLayout:
        """The layout of experiment ``proj`` (or of its sweep's trial ``trial``) in the working directory."""
        root = Path("results") / proj
        return cls(root / TRIALS_DIR / trial if trial else root)

    @classmethod
    def of_config(cls, cfg: Mapping[str, Any]) -> StepLayout:
        """The layout of the experiment a (validated) config describes: its ``proj`` and ``trial``."""
        trial = cfg.get("trial")
        return cls.of(str(cfg["proj"]), trial["name"] if trial else None)

    def step_dir(self, name: str) -> Path:
        """Folder of a step's outputs (``metrics.json``, predictions, weights)."""
        return self.root / "steps" / name

    def metrics(self, name: str) -> Path:
        """The step's Snakemake target, written last and atomically: it exists iff the step finished."""
        return self.step_dir(name) / METRICS

    def checkpoints(self, name: str) -> Path:
        """Checkpoints of a training step; not a declared output, so Snakemake never deletes them."""
        return self.root / "checkpoints" / name

    def log(self, name: str) -> Path:
        """The job's log file (logging, stdout and stderr of the step)."""
        return self.root / "logs" / f"{name}.log"

    def progress(self, name: str) -> Path:
        """The step's progress record (:mod:`mml_core.progress`), beside its log."""
        return progress_of_log(self.log(name))

    def config_file(self, digest: str) -> Path:
        """The validated config the jobs of one plan read, named by its hash (see :mod:`.plan`)."""
        return self.root / "configs" / f"{digest}.json"

    def config_yaml(self, digest: str) -> Path:
        """The same config as readable YAML (Hydra's ``config.yaml``)."""
        return self.root / "configs" / f"{digest}.yaml"

    def config_overrides(self, digest: str) -> Path:
        """What that config changed against the default experiment, and where the changes came from."""
        return self.root / "configs" / f"{digest}.overrides.yaml"

    @property
    def run_config(self) -> Path:
        """``config.yaml`` of the latest run, beside its results."""
        return self.root / "config.yaml"

    @property
    def run_overrides(self) -> Path:
        """``overrides.yaml`` of the latest run, beside its results."""
        return self.root / "overrides.yaml"

    def finished_records(self) -> list[Path]:
        """The ``metrics.json`` of every finished step of this experiment, by step name."""
        return sorted(self.root.glob(str(self.metrics("*").relative_to(self.root))))

    @property
    def logs_dir(self) -> Path:
        """Folder of the job logs and of the CSV logger's runs."""
        return self.root / "logs"

    @property
    def tensorboard_dir(self) -> Path:
        """TensorBoard's runs, one folder per step (MML's ``${proj_path}/tensorboard``)."""
        return self.root / "tensorboard"

    def broken(self, name: str, stamp: str) -> Path:
        """Where planning moves the folder of a step whose results turned out incomplete (kept, never deleted)."""
        return self.step_dir(name).with_name(f"{name}.broken-{stamp}")

    def fingerprint(self, task: str) -> Path:
        """The data fingerprint of (base) task ``task``: an input of every step that reads the task."""
        return self.root / "fingerprints" / f"{task}.json"

    @property
    def previous_dir(self) -> Path:
        """The last complete summary and plots, restored when a rerun of finish_exp fails."""
        return self.root / "previous"

    def metrics_pattern(self) -> str:
        """The output pattern of the generated rules: the wildcard ``step`` is the step name."""
        return str(self.metrics(f"{{{STEP_WILDCARD}}}"))

    def log_pattern(self) -> str:
        """The log pattern of the generated rules."""
        return str(self.log(f"{{{STEP_WILDCARD}}}"))

    def fingerprint_pattern(self) -> str:
        """The output pattern of the data fingerprint rule: the wildcard ``task`` is the base task name."""
        return str(self.fingerprint(f"{{{TASK_WILDCARD}}}"))


def step_name_regex(kind: str) -> str:
    """The names of command kind ``kind``'s steps: the wildcard constraint of its rule."""
    return re.escape(kind) + PARAMS_REGEX
