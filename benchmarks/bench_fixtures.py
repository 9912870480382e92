"""Input files the benchmarks run on: experiment files and the demo data.

An experiment file is a small YAML on top of the workflow's config/config.yaml, written the way a
user would select a scheduler or add a callback; ``custom_scheduler_file`` is the one that puts a
custom scheduler (``module:Class``) on the demo task. The demo tasks are written once per run,
outside any timing, and shared by every measurement through ``data_dir``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks")


def experiment_file(path: Path, **keys: Any) -> Path:
    """Write an experiment file (a small YAML on top of config/config.yaml) with these keys."""
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in keys.items()))  # JSON is YAML
    return path


def custom_scheduler_file(path: Path, proj: str, data: Path, scheduler: str, subroutine: str) -> Path:
    """An experiment file selecting a custom scheduler (``module:Class``) on the demo task, no pivot."""
    mode = {"scheduler": scheduler, "subroutines": [subroutine]}
    return experiment_file(
        path, proj=proj, data_dir=str(data), task_list=["sk_digits"], pivot={"name": None}, mode=mode
    )


def demo_data(folder: Path) -> Path:
    """Write the demo tasks once (not timed); reuse them through ``data_dir``."""
    from mml_core.tasks.demo import write_demo_tasks

    if not (folder / "RAW").is_dir():
        logger.info("Writing the demo tasks to %s (not timed)", folder)
        write_demo_tasks(folder)
    return folder
