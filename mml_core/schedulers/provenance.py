"""What a step recorded, and the one check of whether that record still fits the schedule.

A step's identity is its schedule entry (command and params, MML's format) and the hash of the
config slice it reads. The job writes both into the step's ``metrics.json`` (with results and
provenance) and into ``step.json`` beside its checkpoints. Whenever a record meets the current
schedule (planning without Snakemake's records, ``finish_exp``, resuming from checkpoints) the
same :meth:`StepIdentity.matches` decides whether it is current or stale.

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


def claim_checkpoints(directory: Path, identity: StepIdentity, extend: bool = False) -> None:
    """Mark ``directory`` as holding checkpoints of ``identity``; move checkpoints of another entry or
    config aside to ``<dir>.stale-<time>`` first (never deleted), so the step starts fresh. With
    ``extend``, checkpoints that differ only by a lower ``trainer.max_epochs`` stay and continue."""
    marker = directory / CHECKPOINT_CLAIM
    record = read_record(marker) if marker.is_file() else None
    if record is not None and not identity.matches(record):
        if extend and identity.extends(record):
            logger.info(
                "Extending %s from max_epochs=%s to %s (mode.extend): training continues from its checkpoints.",
                identity.name, record["max_epochs"], identity.max_epochs,
            )  # fmt: skip
        else:
            aside = directory.with_name(f"{directory.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            directory.rename(aside)
            logger.warning(
                "Checkpoints in %s were written under a different config (%s); moved them to %s and starting this "
                "step fresh.", directory, record.get("entry"), aside,
            )  # fmt: skip
    atomic_write_json(marker, {
        "entry": identity.entry, "config_hash": identity.config_hash,
        "extension_hash": identity.extension_hash, "max_epochs": identity.max_epochs,
    })  # fmt: skip
