"""The working directory's lock: never two runs writing the same results; writable results.

Snakemake locks the working directory while a run works in it (``.snakemake/locks/<n>.*.lock``) but
records no owner, so a run killed with SIGKILL (OOM killer, lost node) leaves a lock that stops every
later run until someone runs ``snakemake --unlock``. Here every run records who holds the lock
(:func:`record_holder`, called from ``onstart``, once Snakemake has taken it): host, machine (boot
id and PID namespace: a pid means something only there), pid and process start time. The record
lies beside Snakemake's lock files, so Snakemake removes it with them (end of run, ``--unlock``).

Before Snakemake takes its lock (:func:`guard_lock`, while the Snakefile is parsed) an existing lock
is removed only when its holder ran on this machine and is provably gone: no process with that pid
and start time lives. Anything else stops with one message naming the holder and the fix: the
holder still runs; it ran on another host or container, which this one cannot check; there is no
record (a run killed while starting, or another tool); or this is a dry run, which changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from mml_core.io import atomic_write_json

logger = logging.getLogger(__name__)

HOLDER = "mml_core-holder.json"
# the names Snakemake's file persistence gives its lock files
_LOCK_NAME = re.compile(r"\d+\.(input|output)\.lock")
_UNLOCK = "remove the lock with `snakemake --unlock` and run again"


class WorkdirLocked(RuntimeError):
    """Another run may hold the working directory's lock; the message names it and the fix."""


def locks_dir(workdir: Path) -> Path:
    """Where Snakemake keeps the lock files of ``workdir``."""
    return Path(workdir) / ".snakemake" / "locks"


def lock_files(workdir: Path) -> list[Path]:
    """Snakemake's lock files in ``workdir``."""
    folder = locks_dir(workdir)
    return sorted(p for p in folder.glob("*.lock") if _LOCK_NAME.fullmatch(p.name)) if folder.is_dir() else []


def machine_id() -> str:
    """Host name, boot id and PID namespace of this process: where its pids can be checked."""
    boot = Path("/proc/sys/kernel/random/boot_id")
    boot_id = boot.read_text().strip() if boot.is_file() else str(psutil.boot_time())
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{boot_id}/{namespace}"


def _lock_stamps(locks: list[Path]) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in locks}


def record_holder(workdir: Path) -> dict[str, Any]:
    """Record this process as the holder of ``workdir``'s current lock (call it once the lock is taken)."""
    holder = {
        "host": socket.gethostname(),
        "machine": machine_id(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
        "command": " ".join(psutil.Process().cmdline()),
        # ties the record to these lock files: a record left beside a newer lock names nobody
        "locks": _lock_stamps(lock_files(workdir)),
    }
    atomic_write_json(locks_dir(workdir) / HOLDER, holder)
    return holder


def read_holder(workdir: Path) -> dict[str, Any] | None:
    """The recorded holder of ``workdir``'s current lock files, or None (no record, or one of another lock)."""
    path = locks_dir(workdir) / HOLDER
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or holder.get("locks") != _lock_stamps(lock_files(workdir)):
        return None
    return holder


def _running(holder: dict[str, Any]) -> bool:
    """Whether the holder process (on this machine) still runs: same pid and start time, not a zombie."""
    if holder["pid"] == os.getpid():
        return False  # an earlier in-process run of this very process, which has ended
    try:
        process = psutil.Process(holder["pid"])
        return abs(process.create_time() - holder["started"]) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _describe(holder: dict[str, Any]) -> str:
    started = datetime.fromtimestamp(holder["started"]).isoformat(sep=" ", timespec="seconds")
    return f"snakemake pid {holder['pid']} on host {holder['host']}, started {started} (`{holder['command']}`)"


def guard_lock(workdir: Path, dryrun: bool) -> None:
    """Remove ``workdir``'s lock if its holder is provably gone, else raise :class:`WorkdirLocked`.

    See the module docstring; ``dryrun`` runs never remove a lock.
    """
    locks = lock_files(workdir)
    if not locks:
        return
    holder = read_holder(workdir)
    where = f"The working directory {Path(workdir).resolve()} is locked"
    if holder is None:
        written = datetime.fromtimestamp(max(p.stat().st_mtime for p in locks)).isoformat(sep=" ", timespec="seconds")
        raise WorkdirLocked(
            f"{where} by a snakemake run that recorded no holder (lock files {', '.join(p.name for p in locks)} of "
            f"{written}): one that was killed while starting, or not started through this workflow. If no snakemake "
            f"works in this directory any more (on any host), {_UNLOCK}."
        )
    if holder["machine"] != machine_id():
        other = "another container or PID namespace of this host" if holder["host"] == socket.gethostname() else "another host"
        raise WorkdirLocked(
            f"{where} by {_describe(holder)}, which runs on {other}: from here it cannot be checked whether it still "
            f"runs. Two runs would write the same results: wait for it to finish; if you know it is gone, {_UNLOCK}."
        )
    if _running(holder):
        raise WorkdirLocked(
            f"{where} by {_describe(holder)}, which is still running. Two runs would write the same results: wait for "
            f"it to finish or stop it (Ctrl-C in its terminal, or `kill {holder['pid']}`), then run again."
        )
    if dryrun:
        raise WorkdirLocked(
            f"{where} by {_describe(holder)}, which is not running any more (killed?). A dry run changes nothing, so the "
            "stale lock stays: run without -n (the run removes it itself), or remove it with `snakemake --unlock`."
        )
    for path in [*locks, locks_dir(workdir) / HOLDER]:
        path.unlink(missing_ok=True)
    logger.warning(
        "Removed the stale lock of %s in %s: it ran on this host and is not running any more (killed?).",
        _describe(holder), workdir,
    )  # fmt: skip


def check_writable(results_dir: Path) -> None:
    """Raise ``PermissionError`` with the fix if the results folder (or a folder in it) is read-only."""
    path = Path(results_dir)
    while not path.exists():
        path = path.parent
    folders = [path] + [path / sub for sub in ("steps", "checkpoints", "logs") if (path / sub).is_dir()]
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(
                f"{folder} is not writable, so the steps of {results_dir} cannot write their results. Make it "
                "writable (chmod -R u+w), or run in another working directory or with another proj (--config proj=...)."
            )
