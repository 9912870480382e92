"""What a step recorded, and the checks of whether that record still fits the schedule and the disk.

A step's identity is its schedule entry (command and params, MML's format) and the hash of the
config slice it reads. The job writes both into the step's ``metrics.json`` (with results and
provenance) and into ``step.json`` beside its checkpoints. Whenever a record meets the current
schedule (planning without Snakemake's records, ``finish_exp``, resuming from checkpoints) the
same :meth:`StepIdentity.matches` decides whether it is current or stale.

The record also lists the files the step wrote with their sizes and the steps whose results it
read, so planning can tell (:func:`record_problem`) a finished step whose results were since lost
or truncated, which Snakemake would take as done.

One change leaves checkpoints usable: a higher ``trainer.max_epochs`` with everything else of the
slice equal (:meth:`StepIdentity.extends`). Lightning's loops, optimizer and LR scheduler state,
the data order (seeded per epoch) and the per-batch seeds do not depend on ``max_epochs``, so with
``mode.extend`` the checkpoints continue and the result equals a training run for the higher
count from the start. A value resolved from ``max_epochs`` when the config was composed (MML's
``lr_scheduler=cosine``: ``T_max: ${trainer.max_epochs}``) changes the slice too: such a step starts over.
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

from mml_core.config import config_hash
from mml_core.io import atomic_write_json

logger = logging.getLogger(__name__)

CHECKPOINT_CLAIM = "step.json"
# the one key whose (higher) value checkpoints survive with mode.extend: trainer.max_epochs
EXTENSIBLE = ("trainer", "max_epochs")


@dataclasses.dataclass(frozen=True)
class StepIdentity:
    """What a step's results depend on besides its input files."""

    name: str
    command: str
    params: list[Any]
    entry: str
    config_hash: str
    # the slice's hash without trainer.max_epochs, and that value (None: the slice has none)
    extension_hash: str = ""
    max_epochs: int | None = None

    def matches(self, record: Mapping[str, Any]) -> bool:
        """True if ``record`` (a ``metrics.json`` or ``step.json``) was written by this step under this config."""
        return record.get("entry") == self.entry and record.get("config_hash") == self.config_hash

    def extends(self, record: Mapping[str, Any]) -> bool:
        """True if ``record`` (a ``step.json``) claims checkpoints of this step that differ only by fewer epochs."""
        earlier = record.get("max_epochs")
        return (
            record.get("entry") == self.entry
            and record.get("extension_hash") == self.extension_hash
            and isinstance(earlier, int) and isinstance(self.max_epochs, int)
            and 0 <= earlier <= self.max_epochs
        )  # fmt: skip


def extension_key(config_slice: Mapping[str, Any]) -> tuple[str, int | None]:
    """The hash of ``config_slice`` without ``trainer.max_epochs``, and that value (see :meth:`StepIdentity.extends`)."""
    section, key = EXTENSIBLE
    trainer = config_slice.get(section)
    if not isinstance(trainer, Mapping) or key not in trainer:
        return config_hash(config_slice), None
    rest = {**config_slice, section: {k: v for k, v in trainer.items() if k != key}}
    return config_hash(rest), trainer[key]


class RecordError(ValueError):
    """A step record that cannot be read; the message names the file and the fix."""


def read_record(path: Path) -> dict[str, Any]:
    """A step's ``metrics.json`` (or ``step.json``) as a dict; :class:`RecordError` if it is not one."""
    try:
        with open(path, "rb") as fh:
            record = json.loads(fh.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError(
            f"{path} is not valid JSON (truncated or overwritten? {exc}). Run the same snakemake command again: "
            "planning redoes the step that wrote it."
        ) from None
    if not isinstance(record, dict):
        raise RecordError(f"{path} holds a JSON {type(record).__name__}, not a step record. Run the same snakemake "
                          "command again: planning redoes the step that wrote it.")
    return record


def record_problem(path: Path, results_dir: Path) -> tuple[str | None, list[str]]:
    """``(why the finished step recorded in path is incomplete or None, the steps it read)``.

    Incomplete: the record is not valid JSON, or a file it lists is missing or has another size.
    """
    try:
        record = read_record(path)
    except RecordError:
        return "its metrics.json is not a valid record (truncated or overwritten?)", []
    inputs = list(record.get("inputs") or [])
    for name, size in (record.get("files") or {}).items():
        try:
            actual = (Path(results_dir) / name).stat().st_size
        except OSError:
            return f"{name} is missing (deleted?)", inputs
        if actual != size:
            return f"{name} has {actual} bytes, but {size} were written (truncated or replaced?)", inputs
    return None, inputs


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
    files: Mapping[str, int],
    inputs: Sequence[str],
) -> dict[str, Any]:
    """Write a finished step's ``metrics.json`` atomically (its existence means: finished) and return it.

    ``files``: what the step wrote (path relative to the results folder -> size in bytes);
    ``inputs``: the names of the steps whose results it read.
    """
    record = {
        "step": identity.name,
        "command": identity.command,
        "params": identity.params,
        "entry": identity.entry,
        "config_hash": identity.config_hash,
        "config": str(config_file),
        "files": dict(files),
        "inputs": list(inputs),
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
    """The steps whose ``metrics.json`` exists but was written for another entry or config (unreadable ones
    are not stale but incomplete: :func:`record_problem`)."""
    stale = []
    for identity, path in current:
        try:
            if path.is_file() and not identity.matches(read_record(path)):
                stale.append(identity)
        except RecordError:
            continue
    return stale


def stale_results_message(stale: Sequence[StepIdentity], results_dir: Path) -> str:
    """The message for step results computed under another config than the current one."""
    rules = sorted({identity.command for identity in stale})
    return (
        f"{len(stale)} step result(s) in {results_dir} were computed under a different config than the "
        f"current one (e.g. {stale[0].name}); Snakemake does not rerun them because its records in .snakemake/ "
        f"do not know their config. Rerun them with `snakemake --cores N --forcerun {' '.join(rules)}`, or use "
        "another proj (--config proj=...) to keep both studies."
    )


def claim_checkpoints(directory: Path, identity: StepIdentity, extend: bool = False) -> None:
    """Mark ``directory`` as holding checkpoints of ``identity``; move checkpoints of another entry or
    config aside to ``<dir>.stale-<time>`` first (never deleted), so the step starts fresh. With
    ``extend``, checkpoints that differ only by a lower ``trainer.max_epochs`` stay and continue."""
    marker = directory / CHECKPOINT_CLAIM
    try:
        claimed = read_record(marker) if marker.is_file() else None
    except RecordError:
        claimed = {"entry": "an unreadable step.json"}
    if claimed is not None and not identity.matches(claimed):
        if extend and identity.extends(claimed):
            logger.info(
                "Extending %s from max_epochs=%s to %s (mode.extend): training continues from its checkpoints.",
                identity.name, claimed["max_epochs"], identity.max_epochs,
            )  # fmt: skip
        else:
            aside = directory.with_name(f"{directory.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            directory.rename(aside)
            logger.warning(
                "Checkpoints in %s were written under a different config (%s); moved them to %s and starting this "
                "step fresh.", directory, claimed.get("entry"), aside,
            )  # fmt: skip
    atomic_write_json(marker, {
        "entry": identity.entry, "config_hash": identity.config_hash,
        "extension_hash": identity.extension_hash, "max_epochs": identity.max_epochs,
    })  # fmt: skip
