"""MML's on-disk task description (``TASK_<name>.json``): read, check and write.

A task file lists samples by id with paths relative to its dataset folder
(``RAW/DSET_<dataset>/``), the cross-validation folds of the training samples, and metadata
(means, stds, sizes, class occurrences ...). The format is MML's, so data created by
``mml create`` can be used unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_text

REQUIRED_KEYS = (
    "name",
    "task_type",
    "idx_to_class",
    "modalities",
    "train_folds",
    "train_samples",
    "test_samples",
)


class TaskFileError(ValueError):
    """A task file is malformed or points to missing data; the message names task, problem and fix."""


@dataclasses.dataclass
class TaskDescription:
    """All keys of an MML task file; samples map id -> {modality: value}."""

    name: str
    task_type: str
    idx_to_class: dict[int, str]
    modalities: dict[str, str]
    train_folds: list[list[str]]
    train_samples: dict[str, dict[str, Any]]
    test_samples: dict[str, dict[str, Any]]
    unlabeled_samples: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    description: str = ""
    reference: str = ""
    url: str = ""
    download: str = ""
    license: str = "unknown"
    release: str = ""
    keywords: list[str] = dataclasses.field(default_factory=list)
    means: dict[str, float] = dataclasses.field(default_factory=lambda: {"r": 0.0, "g": 0.0, "b": 0.0})
    stds: dict[str, float] = dataclasses.field(default_factory=lambda: {"r": 1.0, "g": 1.0, "b": 1.0})
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    class_occ: dict[str, int] = dataclasses.field(default_factory=dict)
    preprocessed: str = "none"

    @property
    def num_samples(self) -> int:
        """Number of training samples (MML: unlabeled ones if there are no training samples)."""
        return len(self.train_samples) or len(self.unlabeled_samples)

    @property
    def num_classes(self) -> int:
        return len(set(self.idx_to_class.values()))

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["idx_to_class"] = {str(k): v for k, v in self.idx_to_class.items()}
        return data


def read_task_file(path: Path) -> TaskDescription:
    """Parse and check a task file; raise :class:`TaskFileError` naming the task, key and fix."""
    path = Path(path)
    try:
        with open(path) as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise TaskFileError(f"Task file {path} does not exist. Check data_dir and the task name.") from None
    except json.JSONDecodeError as exc:
        raise TaskFileError(
            f"Task file {path} is not valid JSON ({exc}). Recreate it (e.g. python -m mml_core.tasks) "
            "or restore it from a backup."
        ) from None
    task = data.get("name", path.stem.removeprefix("TASK_"))
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise TaskFileError(
            f"Task '{task}' ({path}) lacks the key(s) {', '.join(missing)}. An MML task file needs "
            f"{', '.join(REQUIRED_KEYS)}; recreate it with `mml create` or python -m mml_core.tasks."
        )
    known = {f.name for f in dataclasses.fields(TaskDescription)}
    kwargs = {k: v for k, v in data.items() if k in known}
    kwargs["idx_to_class"] = {int(k): v for k, v in data["idx_to_class"].items()}
    desc = TaskDescription(**kwargs)
    unknown_ids = {i for fold in desc.train_folds for i in fold} - set(desc.train_samples)
    if unknown_ids:
        raise TaskFileError(
            f"Task '{task}' ({path}): train_folds reference {len(unknown_ids)} id(s) missing from "
            f"train_samples, e.g. {sorted(unknown_ids)[:3]}. Recreate the task file."
        )
    return desc


def check_files_exist(desc: TaskDescription, root: Path, modality: str = "image", limit: int = 5) -> None:
    """Raise :class:`TaskFileError` listing the first missing files of ``modality`` under ``root``."""
    missing = []
    for split in (desc.train_samples, desc.test_samples, desc.unlabeled_samples):
        for sample in split.values():
            rel = sample.get(modality)
            if rel is not None and not (root / rel).is_file():
                missing.append(str(root / rel))
                if len(missing) >= limit:
                    break
        if len(missing) >= limit:
            break
    if missing:
        raise TaskFileError(
            f"Task '{desc.name}' points to missing {modality} files, first: {', '.join(missing)}. "
            f"Sample paths are relative to the dataset folder {root}; restore the files or recreate the task."
        )


def write_task_file(desc: TaskDescription, path: Path) -> Path:
    """Write ``desc`` to ``path`` atomically (temp file + rename), creating parent folders."""
    return atomic_write_text(Path(path), json.dumps(desc.to_json(), indent=1))
