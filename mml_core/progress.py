"""A running step's progress record: what the console shows while the step runs, and how it ended.

One small JSON file per step beside its job log (``results/<proj>/logs/<step>.progress.json``, see
:func:`progress_of_log`), replaced atomically on every update, so a reader
(the console in the ``snakemake`` process, on a cluster over the shared file system) never sees a
partial record. The job runner writes what only the console needs: ``result`` (the line for a
finished step) or ``error`` (the last error of a failed one); the training callback adds ``phase``,
``epoch``, ``max_epochs``, ``batch``, ``batches``, ``metrics`` and ``eta_s`` while a trainer runs.
Whether and when the step finished is the step record's fact (its ``metrics.json``, written by
:mod:`mml_core.schedulers.provenance`), not this file's. It is not a Snakemake output: nothing
deletes it.
Writes skip the fsync: a record is worth nothing after a crash, and a busy disk must not stall
training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_json

SUFFIX = ".progress.json"


def progress_of_log(log: Path | str) -> Path:
    """The progress record of the step whose job log is ``log`` (Snakemake names each job's log)."""
    log = Path(log)
    return log.with_name(log.name.removesuffix(".log") + SUFFIX)


def read_progress(path: Path) -> dict[str, Any]:
    """The record at ``path``; empty while the step has written none (or it cannot be read)."""
    try:
        with open(path) as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def start_progress(path: Path, step: str) -> None:
    """A fresh record for an attempt of ``step`` (what an earlier attempt wrote is replaced)."""
    now = time.time()
    atomic_write_json(Path(path), {"step": step, "started": now, "updated": now}, durable=False)


def update_progress(path: Path, **fields: Any) -> None:
    """Merge ``fields`` into the record at ``path`` (one process writes it, so read-merge-write is safe)."""
    record = read_progress(path)
    record.update(fields, updated=time.time())
    atomic_write_json(Path(path), record, durable=False)
