"""Working-directory checks before Snakemake locks it: stale locks of killed runs, writable results.

Snakemake's lock files (``.snakemake/locks/``) hold no process id, so a run killed with SIGKILL
(OOM killer, node loss) leaves them behind and every later run stops with "Directory cannot be
locked" until someone runs ``snakemake --unlock``. Here a lock counts as stale when no other
Snakemake process on this host works in the same directory; it is then removed with a warning.
A live run keeps its lock, and the user gets the pid of the run that holds it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)


def lock_files(workdir: Path) -> list[Path]:
    """Snakemake's lock files in ``workdir``."""
    return sorted((Path(workdir) / ".snakemake" / "locks").glob("*.lock"))


def snakemake_processes_in(workdir: Path) -> list[psutil.Process]:
    """Other Snakemake main processes on this host whose working directory is ``workdir``."""
    own = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    target = Path(workdir).resolve()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        info = proc.info
        cmdline = info.get("cmdline") or []
        if info["pid"] in own or not any(Path(part).name == "snakemake" for part in cmdline[:2]):
            continue
        if info.get("cwd") and Path(info["cwd"]).resolve() == target:
            found.append(proc)
    return found


def clear_stale_locks(workdir: Path) -> None:
    """Remove lock files no live Snakemake process on this host owns; report live owners."""
    locks = lock_files(workdir)
    if not locks:
        return
    owners = snakemake_processes_in(workdir)
    if owners:
        pids = ", ".join(str(p.pid) for p in owners)
        logger.warning(
            "Another snakemake (pid %s) is running in %s and holds its lock: wait for it to finish or stop "
            "it. If that process is not yours to wait for, `snakemake --unlock` removes the lock.",
            pids, workdir,
        )
        return
    for lock in locks:
        lock.unlink(missing_ok=True)
    logger.warning(
        "Removed a stale Snakemake lock in %s: no snakemake process runs there on this host (the previous run "
        "was killed). If a snakemake on another host shares this directory, stop it before continuing.",
        workdir,
    )


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
