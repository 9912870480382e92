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
from mml_core.tasks.types import CLASSIFICATION, EMPTY_MASK_TOKEN, SEGMENTATION, TaskTypeError, check_targets

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
    _check_classes_and_splits(desc, where)
    return desc


def _check_classes_and_splits(desc: TaskDescription, where: str) -> None:
    """What training needs of a task's classes, folds and splits: one head output per class index
    (classification; the other types map raw indices to classes, see :mod:`mml_core.tasks.types`),
    non-empty folds that each hold every class of the training pool, no test sample in training."""
    if desc.task_type == CLASSIFICATION:
        _check_class_indices(desc, where)
    leaked = sorted(set(desc.test_samples) & set(desc.train_samples))
    if leaked:
        raise TaskFileError(
            f"{where}: {len(leaked)} test sample id(s) are also training samples, e.g. {leaked[:3]}: the test metrics "
            f"would score samples the model trained on. Remove them from train_samples and train_folds, or {_RECREATE}."
        )
    empty = [k for k, fold in enumerate(desc.train_folds) if not fold]
    if empty:
        raise TaskFileError(
            f"{where}: train_folds {empty} are empty: training on such a fold has no validation data. Distribute the "
            f"training samples over all {len(desc.train_folds)} folds or {_RECREATE}."
        )
    pool = {s["class"] for s in desc.train_samples.values() if "class" in s}
    for k, fold in enumerate(desc.train_folds):
        missing = pool - {desc.train_samples[i]["class"] for i in fold if "class" in desc.train_samples[i]}
        if missing:
            lacking = [desc.idx_to_class[c] for c in sorted(missing)]
            raise TaskFileError(
                f"{where}: fold {k} has no sample of the class(es) {lacking[:5]}, so validation on it cannot score "
                "them. Split the folds stratified by class (python -m mml_core.tasks does), use fewer folds, or "
                "merge rare classes."
            )


def _check_class_indices(desc: TaskDescription, where: str) -> None:
    """A classification task's ``class`` values are its head's outputs: indices 0..C-1, one name each."""
    indices = sorted(desc.idx_to_class)
    if indices != list(range(len(indices))):
        raise TaskFileError(
            f"{where}: idx_to_class has the class indices {indices[:12]}, but a model has one output per class "
            f"0..C-1 without gaps. Number the classes 0..{len(indices) - 1} (and the samples' 'class' values with "
            f"them) or {_RECREATE}."
        )
    names = [desc.idx_to_class[i] for i in indices]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TaskFileError(
            f"{where}: idx_to_class names {repeated[:5]} more than once; every class index needs a name of its own "
            f"(the summary, confusion matrices and metrics are per class). Rename or merge the classes, or {_RECREATE}."
        )


def path_modalities(desc: TaskDescription) -> list[str]:
    """The modalities whose sample values are file paths: MML gives them a file suffix in ``modalities``;
    a segmentation task's masks are files whatever its ``modalities`` say."""
    names = [name for name, suffix in desc.modalities.items() if str(suffix).strip()] or ["image"]
    return names + ["mask"] if desc.task_type == SEGMENTATION and "mask" not in names else names


def sample_files(desc: TaskDescription, modalities: Iterable[str]) -> list[str]:
    """The distinct file paths (relative to the task file's folder) of ``modalities``, over every split
    (a segmentation sample's ``EMPTY_MASK_TOKEN`` names no file)."""
    wanted = list(modalities)
    return list(dict.fromkeys(
        sample[m]
        for split in (desc.train_samples, desc.test_samples, desc.unlabeled_samples)
        for sample in split.values()
        for m in wanted
        if isinstance(sample.get(m), str) and sample[m] != EMPTY_MASK_TOKEN
    ))  # fmt: skip


def missing_files_error(desc: TaskDescription, root: Path, missing: list[Path], modality: str = "image") -> TaskFileError:
    """The error for files of task ``desc`` that are not under ``root``: the first ones, and the fix."""
    return TaskFileError(
        f"Task '{desc.name}' points to missing {modality} files, first: {', '.join(map(str, missing[:5]))}. "
        f"Sample paths are relative to the folder of the task file ({root}); restore the files or "
        "recreate the task."
    )


def check_files_exist(desc: TaskDescription, root: Path, modality: str = "image", limit: int = 5) -> None:
    """Raise :class:`TaskFileError` listing the first missing files of ``modality`` under ``root``."""
    missing = []
    for rel in sample_files(desc, [modality]):
        if not (root / rel).is_file():
            missing.append(root / rel)
            if len(missing) >= limit:
                break
    if missing:
        raise missing_files_error(desc, root, missing, modality)


def write_task_file(desc: TaskDescription, path: Path) -> Path:
    """Write ``desc`` to ``path`` atomically (temp file + rename), creating parent folders."""
    return atomic_write_text(Path(path), json.dumps(desc.to_json(), indent=1))
