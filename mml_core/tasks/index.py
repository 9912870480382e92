"""Find task files in an MML data root by scanning (MML keeps no index file).

An MML data root holds raw tasks at ``RAW/DSET_<dataset>/TASK_<task>.json`` and preprocessed
versions at ``PREPROCESSED/<id>/DSET_<dataset>/TASK_<task>.json``; MML calls the raw version
preprocessing ``none``. As in MML's file manager, the index maps task name -> preprocessing id ->
task file. The name is taken from the file name (``mml create`` names the file after the task),
so scanning reads no file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mml_core.tasks.tags import TAG_SEP

logger = logging.getLogger(__name__)

RAW = "RAW"
PREPROCESSED = "PREPROCESSED"
NO_PREPROCESSING = "none"


def dataset_dir(data_dir: Path, dataset: str, preprocessing: str = NO_PREPROCESSING) -> Path:
    """Folder of ``dataset`` in the raw or a preprocessed version; sample paths are relative to it."""
    base = (
        Path(data_dir) / RAW
        if preprocessing == NO_PREPROCESSING
        else Path(data_dir) / PREPROCESSED / preprocessing
    )
    return base / f"DSET_{dataset}"


def task_file_path(data_dir: Path, dataset: str, task: str, preprocessing: str = NO_PREPROCESSING) -> Path:
    """Where MML keeps the task file of ``task`` in ``dataset`` (raw unless ``preprocessing`` is given)."""
    return dataset_dir(data_dir, dataset, preprocessing) / f"TASK_{task}.json"


def version_path(raw_task_file: Path, preprocessing: str) -> Path:
    """The task file of the ``preprocessing`` version of the task whose RAW task file is ``raw_task_file``."""
    raw_task_file = Path(raw_task_file)
    dataset = raw_task_file.parent.name.removeprefix("DSET_")
    task = raw_task_file.stem.removeprefix("TASK_")
    return task_file_path(raw_task_file.parents[2], dataset, task, preprocessing)


def scan_task_files(data_dir: Path) -> dict[str, dict[str, Path]]:
    """Task name -> {preprocessing id (``none`` for RAW): task file} for every task under ``data_dir``.

    Files of tagged tasks (``TASK_a+nested?0.json``, which MML writes when it creates a tagged task)
    are skipped: tags are applied in memory to the base task.
    """
    data_dir = Path(data_dir)
    found: dict[str, dict[str, Path]] = {}
    versions = [(NO_PREPROCESSING, path) for path in sorted(data_dir.glob(f"{RAW}/DSET_*/TASK_*.json"))]
    versions += [
        (p.parent.parent.name, p) for p in sorted(data_dir.glob(f"{PREPROCESSED}/*/DSET_*/TASK_*.json"))
    ]
    for preprocessing, path in versions:
        name = path.stem.removeprefix("TASK_")
        if TAG_SEP in name:
            logger.debug("Skipping tagged task file %s: tags are applied to the base task in memory.", path)
            continue
        known = found.setdefault(name, {})
        if preprocessing in known:
            logger.warning(
                "Task %s exists twice with preprocessing %s: %s and %s. Using the first; rename or remove "
                "one.",
                name, preprocessing, known[preprocessing], path,
            )  # fmt: skip
            continue
        known[preprocessing] = path
    return found
