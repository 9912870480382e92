"""Atomic file writes: readers see the old file or the complete new one, never a partial one.

Every file the project writes goes through :func:`atomic_write`: results, checkpoints, task files,
images. An interruption (SIGKILL, a full disk, a lost node) leaves the previous file or none, plus
at most a hidden ``.<name>.<random>.tmp`` beside it, which no reader looks at. New files get the
mode the umask allows (as ``open`` would), so others on a cluster can read results where the umask
says so.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

# after a write failed, less free space than this on the target's file system means: it is full
# (the failed temp file still holds the space it got, so a full disk shows ~0 here)
_FULL_BELOW_BYTES = 1 << 20


def _disk_full(folder: Path, exc: BaseException) -> bool:
    """Whether ``exc`` (raised while writing into ``folder``) comes from a full disk or quota.

    torch and other C++ writers turn ENOSPC into messages such as "unexpected pos 143552", so the
    free space of the file system decides where the error carries no errno.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < _FULL_BELOW_BYTES


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, fsync it, then rename it into place.

    Raises ``OSError(ENOSPC)`` naming the file and the fix when the disk (or quota) is full,
    whatever the writer reported; the previous file at ``path`` is kept in every failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL with mode 0o666: the kernel applies the umask (mkstemp would force 0o600)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        full = not isinstance(exc, KeyboardInterrupt) and _disk_full(path.parent, exc)
        tmp.unlink(missing_ok=True)
        if full:
            raise OSError(
                errno.ENOSPC,
                f"No space left on device while writing {path} ({type(exc).__name__}: {str(exc)[:200]}). "
                f"Free space on the file system of {path.parent} (or raise your quota) and run the same "
                "command again: finished files are kept and an interrupted training step resumes from "
                "its last complete checkpoint",
            ) from exc
        raise
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
