"""Find task files in an MML data root by scanning (MML keeps no index file)."""

from __future__ import annotations

from pathlib import Path

RAW = "RAW"


def task_file_path(data_dir: Path, dataset: str, task: str) -> Path:
    """Where MML keeps the raw task file of ``task`` in ``dataset``."""
    return Path(data_dir) / RAW / f"DSET_{dataset}" / f"TASK_{task}.json"


def scan_task_files(data_dir: Path) -> dict[str, Path]:
    """Map task name -> raw task file for every ``RAW/DSET_*/TASK_*.json`` under ``data_dir``."""
    found: dict[str, Path] = {}
    for path in sorted(Path(data_dir).glob(f"{RAW}/DSET_*/TASK_*.json")):
        found.setdefault(path.stem.removeprefix("TASK_"), path)
    return found
