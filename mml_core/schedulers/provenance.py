"""What a step recorded, and the one check of whether that record still fits the schedule.

A step's identity is its schedule entry (command and params, MML's format) and the hash of the
config slice it reads. The job writes both into the step's ``metrics.json`` (with results and
provenance) and into ``step.json`` beside its checkpoints. Whenever a record meets the current
schedule (planning without Snakemake's records, ``finish_exp``, resuming from checkpoints) the
same :meth:`StepIdentity.matches` decides whether it is current or stale.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import platform
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from mml_core.config import REPO_ROOT
from mml_core.io import atomic_write_json

logger = logging.getLogger(__name__)

CHECKPOINT_CLAIM = "step.json"


@dataclasses.dataclass(frozen=True)
class StepIdentity:
    """What a step's results depend on besides its input files."""

    name: str
    command: str
    params: list[Any]
    entry: str
    config_hash: str

    def matches(self, record: Mapping[str, Any]) -> bool:
        """True if ``record`` (a ``metrics.json`` or ``step.json``) was written by this step under this config."""
        return record.get("entry") == self.entry and record.get("config_hash") == self.config_hash


def read_record(path: Path) -> dict[str, Any]:
    """A step's ``metrics.json`` as a dict."""
    with open(path) as fh:
        return json.load(fh)


def versions() -> dict[str, str]:
    """Versions of Python and the packages a step's results depend on."""
    found = {"python": platform.python_version()}
    for dist in ("mml_core", "torch", "pytorch-lightning", "torchmetrics", "snakemake"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[dist] = metadata.version(dist)
    return found


@functools.cache
def code_version() -> dict[str, Any]:
    """The git commit of the mml_core checkout that runs (None outside a git checkout) and whether
    it had uncommitted changes: with the package version, the code a result was computed with."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"git_commit": commit, "git_dirty": dirty}


def write_record(
    path: Path,
    identity: StepIdentity,
    results: Mapping[str, Any],
    config_files: Mapping[str, Path],
    started: float,
    threads: int,
    gpus: Sequence[str],
) -> dict[str, Any]:
    """Write a finished step's ``metrics.json`` atomically (its existence means: finished) and return it.

    ``config_files`` names the run's config records: ``config`` (the JSON the job read),
    ``config_yaml`` and ``overrides``.
    """
    record = {
        "step": identity.name,
        "command": identity.command,
        "params": identity.params,
        "entry": identity.entry,
        "config_hash": identity.config_hash,
        **{key: str(path) for key, path in config_files.items()},
        "results": dict(results),
        "provenance": {
            "started": datetime.fromtimestamp(started, timezone.utc).isoformat(),
            "wall_time_s": round(time.time() - started, 3),
            "host": socket.gethostname(),
            "threads": threads,
            "gpus": list(gpus),
            "versions": versions(),
            "code": code_version(),
        },
    }
    atomic_write_json(Path(path), record)
    return record


def step_rows(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """One row per finished step (``paths`` are ``metrics.json`` files; missing ones are skipped): step,
    command, started, wall_time_s, host, config_hash, git_commit; what the report's run page lists."""
    rows = []
    for path in paths:
        if not Path(path).is_file():
            continue
        record = read_record(path)
        facts = record.get("provenance", {})
        rows.append({
            "step": record["step"], "command": record["command"], "started": facts.get("started", ""),
            "wall_time_s": facts.get("wall_time_s", 0.0), "host": facts.get("host", ""),
            "config_hash": record.get("config_hash", ""), "git_commit": facts.get("code", {}).get("git_commit"),
        })  # fmt: skip
    return rows


def stale_records(current: Sequence[tuple[StepIdentity, Path]]) -> list[StepIdentity]:
    """The steps whose ``metrics.json`` exists but was written for another entry or config."""
    return [identity for identity, path in current if path.is_file() and not identity.matches(read_record(path))]


def stale_results_message(stale: Sequence[StepIdentity], results_dir: Path) -> str:
    """The message for step results computed under another config than the current one."""
    rules = sorted({identity.command for identity in stale})
    return (
        f"{len(stale)} step result(s) in {results_dir} were computed under a different config than the "
        f"current one (e.g. {stale[0].name}); Snakemake does not rerun them because its records in .snakemake/ "
        f"do not know their config. Rerun them with `snakemake --cores N --forcerun {' '.join(rules)}`, or use "
        "another proj (--config proj=...) to keep both studies."
    )


def claim_checkpoints(directory: Path, identity: StepIdentity) -> None:
    """Mark ``directory`` as holding checkpoints of ``identity``; move checkpoints of another entry or
    config aside to ``<dir>.stale-<time>`` first (never deleted), so the step starts fresh."""
    marker = directory / CHECKPOINT_CLAIM
    if marker.is_file() and not identity.matches(read_record(marker)):
        old = read_record(marker).get("entry")
        aside = directory.with_name(f"{directory.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        directory.rename(aside)
        logger.warning(
            "Checkpoints in %s were written under a different config (%s); moved them to %s and starting this "
            "step fresh.", directory, old, aside,
        )  # fmt: skip
    atomic_write_json(marker, {"entry": identity.entry, "config_hash": identity.config_hash})
