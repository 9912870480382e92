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
import json
import logging
import platform
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

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


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("mml_core", "torch", "pytorch-lightning", "torchmetrics", "snakemake"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


def write_record(
    path: Path,
    identity: StepIdentity,
    results: Mapping[str, Any],
    config_file: Path,
    started: float,
    threads: int,
    gpus: Sequence[str],
) -> dict[str, Any]:
    """Write a finished step's ``metrics.json`` atomically (its existence means: finished) and return it."""
    record = {
        "step": identity.name,
        "command": identity.command,
        "params": identity.params,
        "entry": identity.entry,
        "config_hash": identity.config_hash,
        "config": str(config_file),
        "results": dict(results),
        "provenance": {
            "started": datetime.fromtimestamp(started, timezone.utc).isoformat(),
            "wall_time_s": round(time.time() - started, 3),
            "host": socket.gethostname(),
            "threads": threads,
            "gpus": list(gpus),
            "versions": _versions(),
        },
    }
    atomic_write_json(Path(path), record)
    return record


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
