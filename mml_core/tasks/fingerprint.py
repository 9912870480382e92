"""Data fingerprints: when the files of a task change, the steps that read the task run again.

A task's fingerprint is a digest of the size and modification time (ns) of its task file and of
every file its samples point to (the modalities with a file suffix, e.g. images and masks). Planning
computes it and writes ``results/<proj>/fingerprints/<task>.json`` only when it differs from the
one there, so the file's modification time is the time the data last changed; every step that
reads the task declares the file as an input, and Snakemake's modification-time rule reruns the
steps after a change. Replacing an image (same name, new content) changes its size or mtime;
a replacement that keeps both to the nanosecond (``cp -p`` of a same-size file) is not seen:
contents are never hashed, which would read every image at every plan. A fingerprint file created
for data that already existed (first plan of a task, or the file deleted) gets the data's newest
modification time, so results computed from that data stay up to date.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from mml_core.io import atomic_write_json
from mml_core.tasks.description import (
    TaskDescription,
    missing_files_error,
    path_modalities,
    sample_files,
)


@dataclasses.dataclass(frozen=True)
class DataFingerprint:
    """The digest of a task's files, how many files it covers, and the newest modification time among them (ns)."""

    digest: str
    files: int
    newest_ns: int


def data_fingerprint(task_file: Path, desc: TaskDescription) -> DataFingerprint:
    """Fingerprint of the task file ``task_file`` (parsed: ``desc``) and every file its samples point to.

    Raises :class:`~mml_core.tasks.description.TaskFileError` naming the first missing files.
    """
    task_file = Path(task_file)
    root = task_file.parent
    prefix = f"{root}{os.sep}"  # plain strings: Path objects would double the cost of 100,000 stats
    stat = task_file.stat()
    lines = [f"{task_file}|{stat.st_size}|{stat.st_mtime_ns}"]
    newest, missing = stat.st_mtime_ns, []
    for modality in path_modalities(desc):
        for rel in sorted(sample_files(desc, [modality])):
            try:
                stat = os.stat(prefix + rel)
            except FileNotFoundError:
                missing.append(root / rel)
                continue
            lines.append(f"{rel}|{stat.st_size}|{stat.st_mtime_ns}")
            newest = max(newest, stat.st_mtime_ns)
        if missing:
            raise missing_files_error(desc, root, missing, modality)
    digest = hashlib.blake2b("\n".join(lines).encode(), digest_size=16).hexdigest()
    return DataFingerprint(digest, len(lines) - 1, newest)


def write_fingerprint(path: Path, task_file: Path, fingerprint: DataFingerprint) -> bool:
    """Write ``fingerprint`` of ``task_file`` to ``path`` unless it is there already; True if it
    replaced another one (the data changed).

    A file written for the first time gets the data's newest modification time (see the module docstring).
    """
    path = Path(path)
    content = {"task_file": str(task_file), "files": fingerprint.files, "digest": fingerprint.digest}
    try:
        same = json.loads(path.read_text()) == content
    except FileNotFoundError:
        same = None
    except (OSError, ValueError):
        same = False
    if same:
        return False
    atomic_write_json(path, content)
    if same is None:
        # in ns: a float of seconds would round below the task file's time and make it look newer
        os.utime(path, ns=(fingerprint.newest_ns, fingerprint.newest_ns))
    return same is not None
