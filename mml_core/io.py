"""Atomic file writes: readers see the old file or the complete new one, never a partial one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], None], durable: bool = True) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, fsync it, then rename it into place.

    ``durable=False`` skips the fsync: for files that are replaced often and worth nothing after a
    crash (progress records), where a busy disk would otherwise stall the writer.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        if durable:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (see :func:`atomic_write` for ``durable``)."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text), durable)
