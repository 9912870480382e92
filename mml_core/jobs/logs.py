"""A job's log file: logging, stdout and stderr (file descriptors too) of one step go to it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_log(path: Path) -> Iterator[None]:
    """Send logging, stdout and stderr (file descriptors too) to ``path`` inside the block.

    File descriptors rather than ``sys.stdout`` are redirected so that what C code and
    subprocesses print (Lightning's progress bar, warnings of native libraries) lands there too.
    The console learns how the step went from its progress record (:mod:`mml_core.progress`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as log:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield
        finally:
            root.removeHandler(handler)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
