"""MML's on-disk task description (``TASK_<name>.json``): read, check and write.

A task file lists samples by id with paths relative to the folder holding it
(``RAW/DSET_<dataset>/`` or ``PREPROCESSED/<id>/DSET_<dataset>/``), the cross-validation folds of
the training samples, and metadata (means, stds, sizes, class occurrences ...). Files are written
exactly as MML's ``TaskDescription.to_json`` writes them (means/stds as ``[r, g, b]``, sizes as
``[min_height, max_height, min_width, max_width]``), so data created by ``mml create`` is read
unchanged and data imported here can be read by MML. In memory, means/stds/sizes are dicts keyed
by those names. Files of earlier mml_core versions (dicts on disk) are read too.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_text
from mml_core.tasks.types import EMPTY_MASK_TOKEN, TaskTypeError, check_targets

REQUIRED_KEYS = (
    "name",
    "task_type",
    "idx_to_class",
    "modalities",
    "train_folds",
    "train_samples",
    "test_samples",
)
# the order of MML's list encodings of RGBInfo and Sizes
RGB_KEYS = ("r", "g", "b")
SIZE_KEYS = ("min_height", "max_height", "min_width", "max_width")
# key order of MML's task files (ALL_TASK_DESCRIPTION_KEYS)
MML_KEY_ORDER = (
    "name", "task_type", "keywords", "modalities", "means", "stds", "sizes", "idx_to_class", "class_occ",
    "description", "creation_protocol", "reference", "url", "download", "license", "release",
    "unlabeled_samples", "train_folds", "train_samples", "test_samples",
)  # fmt: skip
_RECREATE = "recreate it with `mml create` or python -m mml_core.tasks"


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
    creation_protocol: str = ""
    reference: str = ""
    url: str = ""
    download: str = ""
    license: str = "unknown"
    release: str = ""
    keywords: list[str] = dataclasses.field(default_factory=list)
    means: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(RGB_KEYS, 0.0))
    stds: dict[str, float] = dataclasses.field(default_factory=lambda: dict.fromkeys(RGB_KEYS, 1.0))
    sizes: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SIZE_KEYS, 0))
    class_occ: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        """Number of training samples (MML: unlabeled ones if there are no training samples)."""
        return len(self.train_samples) or len(self.unlabeled_samples)

    @property
    def num_classes(self) -> int:
        return len(set(self.idx_to_class.values()))

    def to_json(self) -> dict[str, Any]:
        """The task file content in MML's encoding and key order."""
        data = dataclasses.asdict(self)
        data["idx_to_class"] = {str(k): v for k, v in self.idx_to_class.items()}
        data["means"] = [self.means[k] for k in RGB_KEYS]
        data["stds"] = [self.stds[k] for k in RGB_KEYS]
        data["sizes"] = [self.sizes.get(k, 0) for k in SIZE_KEYS]
        return {key: data[key] for key in MML_KEY_ORDER}


def count_classes(idx_to_class: dict[int, str], labels: Iterable[int]) -> dict[str, int]:
    """Class name -> number of ``labels`` (class indices) with that class, zero for absent classes."""
    counts = Counter(idx_to_class[label] for label in labels)
    return {name: counts[name] for name in dict.fromkeys(idx_to_class.values())}


def _named(value: Any, keys: tuple[str, ...], key: str, where: str) -> dict[str, Any]:
    """MML's list encoding (or a dict of earlier mml_core files) as a dict keyed by ``keys``."""
    if isinstance(value, dict) and set(keys) <= set(value):
        return {k: value[k] for k in keys}
    if isinstance(value, list) and len(value) == len(keys):
        return dict(zip(keys, value))
    raise TaskFileError(
        f"{where}: '{key}' must be a list [{', '.join(keys)}] as MML writes it; got {value!r}. "
        f"Fix the value or {_RECREATE}."
    )


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
    if not isinstance(data, dict):
        raise TaskFileError(
            f"Task file {path} holds a JSON {type(data).__name__}, not an object; {_RECREATE}."
        )
    task = data.get("name", path.stem.removeprefix("TASK_"))
    where = f"Task '{task}' ({path})"
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise TaskFileError(
            f"{where} lacks the key(s) {', '.join(missing)}. An MML task file needs "
            f"{', '.join(REQUIRED_KEYS)}; {_RECREATE}."
        )
    known = {f.name for f in dataclasses.fields(TaskDescription)}
    kwargs = {k: v for k, v in data.items() if k in known}
    try:
        kwargs["idx_to_class"] = {int(k): v for k, v in data["idx_to_class"].items()}
    except (AttributeError, ValueError):
        raise TaskFileError(
            f'{where}: \'idx_to_class\' must map class indices to names, e.g. {{"0": "cat"}}; '
            f"got {data['idx_to_class']!r}. Fix the value or {_RECREATE}."
        ) from None
    for key, keys in (("means", RGB_KEYS), ("stds", RGB_KEYS), ("sizes", SIZE_KEYS)):
        if key in data:
            kwargs[key] = _named(data[key], keys, key, where)
    desc = TaskDescription(**kwargs)
    unknown_ids = {i for fold in desc.train_folds for i in fold} - set(desc.train_samples)
    if unknown_ids:
        raise TaskFileError(
            f"{where}: train_folds reference {len(unknown_ids)} id(s) missing from "
            f"train_samples, e.g. {sorted(unknown_ids)[:3]}. Recreate the task file."
        )
    try:
        check_targets(
            desc.task_type, desc.idx_to_class, desc.modalities, (desc.train_samples, desc.test_samples), where,
            f"Fix the entry (and idx_to_class) or {_RECREATE}.",
        )  # fmt: skip
    except TaskTypeError as exc:
        raise TaskFileError(str(exc)) from None
    return desc


def check_files_exist(desc: TaskDescription, root: Path, modality: str = "image", limit: int = 5) -> None:
    """Raise :class:`TaskFileError` listing the first missing files of ``modality`` under ``root``."""
    missing = []
    for split in (desc.train_samples, desc.test_samples, desc.unlabeled_samples):
        for sample in split.values():
            rel = sample.get(modality)
            if rel is not None and rel != EMPTY_MASK_TOKEN and not (root / rel).is_file():
                missing.append(str(root / rel))
                if len(missing) >= limit:
                    break
        if len(missing) >= limit:
            break
    if missing:
        raise TaskFileError(
            f"Task '{desc.name}' points to missing {modality} files, first: {', '.join(missing)}. "
            f"Sample paths are relative to the folder of the task file ({root}); restore the files or "
            "recreate the task."
        )


def write_task_file(desc: TaskDescription, path: Path) -> Path:
    """Write ``desc`` to ``path`` atomically (temp file + rename), creating parent folders."""
    return atomic_write_text(Path(path), json.dumps(desc.to_json(), indent=1))
