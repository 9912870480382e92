"""Step identity and file layout: the one place that names a step and spells its paths.

A *step* is one (command, params) pair of a schedule. Its name is MML's step naming without the
timestamp (``command--param1_param2``), stable across reruns, so an interrupted step finds its
checkpoints again. Every path of a step (its ``metrics.json`` target, its folder, checkpoints,
log), of the experiment's data fingerprints and kept summary, and the Snakemake patterns of the
rules come from :class:`StepLayout`; no other module spells them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# the part of a step name after the command: "" (no params) or "--p1_p2"; no "/" (it is a folder)
PARAMS_REGEX = r"(--[^/]+)?"
PARAMS_SEP = "--"
# the wildcard of the generated rules' patterns: the whole step name
STEP_WILDCARD = "step"
# the wildcard of the data fingerprint rule's pattern: a base task name
TASK_WILDCARD = "task"
METRICS = "metrics.json"
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
    def of(cls, proj: str) -> StepLayout:
        """The layout of experiment ``proj`` in the working directory."""
        return cls(Path("results") / proj)

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

    def config_file(self, digest: str) -> Path:
        """The validated config the jobs of one plan read, named by its hash (see :mod:`.plan`)."""
        return self.root / "configs" / f"{digest}.json"

    def finished_records(self) -> list[Path]:
        """The ``metrics.json`` of every finished step of this experiment, by step name."""
        return sorted(self.root.glob(str(self.metrics("*").relative_to(self.root))))

    @property
    def logs_dir(self) -> Path:
        """Folder of the job logs and of the experiment loggers' runs."""
        return self.root / "logs"

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
