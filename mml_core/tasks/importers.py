"""Bring your own data: turn an image folder or a MedMNIST-style ``.npz`` into an MML task.

Both importers write every image as PNG to ``<data_dir>/RAW/DSET_<dataset>/<task>/`` and the task
file ``RAW/DSET_<dataset>/TASK_<task>.json`` last and atomically, so a task file exists only for a
complete import (an interrupted import is simply rerun with ``--overwrite``). Sample paths in the
task file are relative to the dataset folder, as ``mml create`` writes them; means, stds and sizes
are computed over the training pool (not the test split), as MML's ``infer_stats`` does, and
``class_occ`` counts the training pool.

- Image folder: one sub-folder per class (``SRC/<class>/**/<image>``); classes are numbered in
  sorted folder order. A stratified ``test_fraction`` is held out as test split.
- ``.npz`` (MedMNIST layout): ``{train,val,test}_images`` (N, H, W) or (N, H, W, 1|3) uint8 and
  ``{train,val,test}_labels`` (N,) or (N, 1). MML tasks have no fixed validation split (every
  fold is a validation split in turn), so the ``val`` samples join the training pool before the
  folds are drawn; ``test`` stays the test split.

The training pool is split into ``n_folds`` stratified folds (scikit-learn). Images of any mode
are read as 8-bit greyscale or RGB by :func:`mml_core.tasks.images.open_image` (16-bit and float
images are stretched from their own min..max to 0..255, see there) and written as PNG, each file
(images and masks) atomically: an interrupted import leaves complete files or none, and rerunning it
repairs them. :func:`write_task` writes tasks of the other types too (their sources:
:mod:`mml_core.tasks.typed_importers`), which is why this module holds about 370 lines: the two
classification importers and the writer all share.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from mml_core.io import atomic_write
from mml_core.tasks.description import (
    RGB_KEYS,
    SIZE_KEYS,
    TaskDescription,
    count_classes,
    write_task_file,
)
from mml_core.tasks.images import open_image
from mml_core.tasks.index import dataset_dir, scan_task_files, task_file_path
from mml_core.tasks.splits import make_folds, split_test
from mml_core.tasks.tags import ARG_SEP, TAG_SEP
from mml_core.tasks.types import CLASSIFICATION, IGNORE_INDEX, REGRESSION, png_modalities

logger = logging.getLogger(__name__)

NPZ_SPLITS = ("train", "val", "test")
# characters MML forbids in task names (TaskCreator), plus path separators
_FORBIDDEN = (" ", "%", TAG_SEP, ARG_SEP, "/", "\\")


class DataImportError(ValueError):
    """Input data cannot become a task; the message names the input, the problem and the fix."""


@dataclasses.dataclass(frozen=True)
class SourceImage:
    """One image to import: sample id, class index, and how to read it (as an ``L`` or ``RGB`` image).

    Tasks of the other types give the sample's target ``entry`` instead of a class (``{"classes": [...]}``,
    ``{"value": x}``) or, for segmentation, ``read_mask`` (a mask of class indices, checked already).
    """

    sample_id: str
    label: int
    read: Callable[[], Image.Image]
    entry: dict[str, Any] | None = None
    read_mask: Callable[[], np.ndarray] | None = None


def _check_name(kind: str, value: str) -> None:
    bad = [ch for ch in _FORBIDDEN if ch in value]
    if not value or bad:
        raise DataImportError(
            f"The {kind} name {value!r} is empty or contains {bad}; MML names may not contain "
            f"{' '.join(repr(c) for c in _FORBIDDEN)}. Choose another --{kind}."
        )


def _check_class_sizes(labels: Sequence[int], class_names: dict[int, str], minimum: int, fix: str) -> None:
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=max(class_names) + 1)
    small = {class_names[c]: int(counts[c]) for c in class_names if counts[c] < minimum}
    if small:
        listed = ", ".join(f"'{name}' ({n})" for name, n in small.items())
        raise DataImportError(
            f"Too few images per class: {listed}; each class needs at least {minimum}. {fix}"
        )


def _stats(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and mean of squares of ``image`` as RGB in [0, 1] (MML loads every image as RGB)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255.0
    return pixels.mean(axis=0), np.square(pixels).mean(axis=0)


def write_task(
    data_dir: Path,
    name: str,
    dataset: str,
    idx_to_class: dict[int, str],
    train: Sequence[SourceImage],
    test: Sequence[SourceImage],
    n_folds: int,
    seed: int,
    source: str,
    overwrite: bool = False,
    task_type: str = CLASSIFICATION,
) -> Path:
    """Write images (and masks) and the task file of a task; return the task file.

    ``train`` is the training pool, split here into ``n_folds`` folds, stratified for classification.
    """
    _check_name("name", name)
    _check_name("dataset", dataset)
    path = task_file_path(data_dir, dataset, name)
    elsewhere = scan_task_files(data_dir).get(name, {}).get("none")
    if elsewhere is not None and (elsewhere != path or not overwrite):
        raise DataImportError(
            f"Task '{name}' already exists at {elsewhere}. Choose another --name"
            + (
                ", or pass --overwrite to replace it."
                if elsewhere == path
                else " (task names are unique in a data root)."
            )
        )
    if n_folds < 2:
        raise DataImportError(f"--n-folds must be at least 2 (MML's minimum), got {n_folds}.")
    labels = [s.label for s in train]
    if task_type == CLASSIFICATION:
        _check_class_sizes(labels, idx_to_class, n_folds, "Add images, merge classes or lower --n-folds.")
    elif len(train) < n_folds:
        raise DataImportError(f"{len(train)} training images cannot fill {n_folds} folds; add images or lower --n-folds.")
    folds = make_folds([s.sample_id for s in train], labels if task_type == CLASSIFICATION else None, n_folds, seed)
    occurrences: list[int] = []

    root = dataset_dir(data_dir, dataset)
    samples: dict[str, dict[str, dict]] = {"train": {}, "test": {}}
    means, squares, heights, widths = [], [], [], []
    jobs = [("train", s) for s in train] + [("test", s) for s in test]
    logger.info(
        "Importing %d images (%d training, %d test) from %s into %s",
        len(jobs),
        len(train),
        len(test),
        source,
        root,
    )
    for split, sample in tqdm(jobs, desc=f"Writing {name}", unit="img", disable=None):
        image = sample.read()
        rel = f"{name}/{sample.sample_id}.png"
        atomic_write(root / rel, lambda tmp, image=image: image.save(tmp, format="PNG"))
        entry = sample.entry if sample.entry is not None else {"class": sample.label}
        if sample.read_mask is not None:
            mask = sample.read_mask()
            entry = {"mask": f"{name}_masks/{sample.sample_id}.png"}
            atomic_write(root / entry["mask"], lambda tmp, mask=mask: Image.fromarray(mask).save(tmp, format="PNG"))
            if split == "train":
                occurrences += [int(v) for v in np.unique(mask) if v != IGNORE_INDEX]
        elif split == "train":
            occurrences += entry.get("classes", [entry["class"]] if "class" in entry else [])
        samples[split][sample.sample_id] = {"image": rel, **entry}
        if split == "train":
            mean, square = _stats(image)
            means.append(mean)
            squares.append(square)
            heights.append(image.height)
            widths.append(image.width)
    mean = np.mean(means, axis=0)
    std = np.sqrt(np.maximum(np.mean(squares, axis=0) - np.square(mean), 0.0))
    stamp = datetime.now().strftime("%d/%m/%Y %H:%M:%S")
    target = next(iter(samples["train"].values()))
    modality = next(m for m in ("class", "classes", "soft_classes", "value", "mask") if m in target)
    desc = TaskDescription(
        name=name,
        task_type=task_type,
        description=f"Imported from {source} with python -m mml_core.tasks.",
        creation_protocol=f"Imported from {source}, {n_folds} {'stratified ' if task_type == CLASSIFICATION else ''}"
        f"folds, seed {seed} @ {stamp}; ",
        idx_to_class=dict(idx_to_class),
        modalities=png_modalities(task_type, modality),
        train_folds=folds,
        train_samples=samples["train"],
        test_samples=samples["test"],
        means=dict(zip(RGB_KEYS, mean.tolist())),
        stds=dict(zip(RGB_KEYS, std.tolist())),
        sizes=dict(zip(SIZE_KEYS, (min(heights), max(heights), min(widths), max(widths)))),
        class_occ=count_classes(idx_to_class, occurrences) if task_type != REGRESSION else {},
    )
    write_task_file(desc, path)
    logger.info("Wrote %s task %s (%d classes, %d folds) to %s", task_type, name, desc.num_classes, n_folds, path)
    return path


def image_suffixes() -> set[str]:
    """File suffixes of the image formats Pillow reads (``.png``, ``.jpg`` ...)."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def image_reader(path: Path) -> Callable[[], Image.Image]:
    """A function that reads the image at ``path`` (errors name the file)."""

    def read() -> Image.Image:
        try:
            return open_image(path)
        except OSError as exc:
            raise DataImportError(f"Cannot read image {path} ({exc}). Remove or repair the file.") from None

    return read


def import_image_folder(
    src: Path,
    data_dir: Path,
    name: str,
    dataset: str | None = None,
    n_folds: int = 5,
    test_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Import ``src/<class>/**/<image>`` as task ``name``; return the task file."""
    src = Path(src)
    if not src.is_dir():
        raise DataImportError(
            f"Image folder {src} does not exist. Pass a folder with one sub-folder per class."
        )
    if not 0 <= test_fraction < 1:
        raise DataImportError(f"--test-fraction must be in [0, 1), got {test_fraction}.")
    class_dirs = sorted(d for d in src.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(class_dirs) < 2:
        raise DataImportError(
            f"{src} has {len(class_dirs)} class sub-folder(s); a classification task needs at least 2. "
            "Put the images of each class into a sub-folder named after the class."
        )
    suffixes = image_suffixes()
    images: list[SourceImage] = []
    skipped: list[Path] = []
    origin: dict[str, Path] = {}
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
        for path in files:
            if path.suffix.lower() not in suffixes:
                skipped.append(path)
                continue
            sample_id = path.relative_to(src).with_suffix("").as_posix()
            if sample_id in origin:
                raise DataImportError(
                    f"{origin[sample_id]} and {path} would both become sample '{sample_id}'. "
                    "Rename one of them."
                )
            origin[sample_id] = path
            images.append(SourceImage(sample_id, label, image_reader(path)))
    if skipped:
        logger.warning("Skipped %d file(s) that are not images, e.g. %s", len(skipped), skipped[0])
    idx_to_class = {label: d.name for label, d in enumerate(class_dirs)}
    labels = [s.label for s in images]
    if test_fraction:
        _check_class_sizes(labels, idx_to_class, 2, "A stratified test split needs 2 per class; add images.")
    by_id = {s.sample_id: s for s in images}
    try:
        train_ids, test_ids = split_test(list(by_id), labels, test_fraction, seed)
    except ValueError as exc:
        raise DataImportError(
            f"Cannot hold out a stratified test split of {test_fraction} from {src} ({exc}). "
            "Raise --test-fraction or add images."
        ) from None
    return write_task(
        Path(data_dir), name, dataset or name, idx_to_class,
        [by_id[i] for i in train_ids], [by_id[i] for i in test_ids], n_folds, seed, str(src), overwrite,
    )  # fmt: skip


def _npz_split(npz: np.lib.npyio.NpzFile, path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
    if images.dtype != np.uint8:
        raise DataImportError(
            f"{path}: {split}_images has dtype {images.dtype}; expected uint8 (0..255) as MedMNIST stores "
            "them. Convert the arrays, e.g. (x * 255).round().astype('uint8') for values in [0, 1]."
        )
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise DataImportError(
            f"{path}: {split}_images has shape {images.shape}; expected (N, H, W) or (N, H, W, 1|3) "
            "2D images. 3D volumes are not supported; export 2D slices."
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise DataImportError(
            f"{path}: {split}_labels has shape {labels.shape} and dtype {labels.dtype}; expected one "
            f"integer class index per image, shape ({len(images)},) or ({len(images)}, 1). Multi-label "
            "targets are not supported."
        )
    if len(labels) and labels.min() < 0:
        raise DataImportError(f"{path}: {split}_labels holds negative class indices; use 0..C-1.")
    return images, labels.astype(int)


def import_npz(
    path: Path,
    data_dir: Path,
    name: str,
    dataset: str | None = None,
    n_folds: int = 5,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Import a MedMNIST-style ``.npz`` as task ``name``; return the task file.

    ``val`` joins the training pool (see the module docstring), ``test`` stays the test split.
    """
    path = Path(path)
    if not path.is_file():
        raise DataImportError(f"{path} does not exist. Pass a MedMNIST-style .npz file.")
    with np.load(path, allow_pickle=False) as npz:
        expected = [f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels")]
        missing = [key for key in expected if key not in npz.files]
        if missing:
            raise DataImportError(
                f"{path} lacks the array(s) {', '.join(missing)} (has {', '.join(npz.files)}). A "
                f"MedMNIST-style file holds {', '.join(expected)}; save the missing ones."
            )
        arrays = {split: _npz_split(npz, path, split) for split in NPZ_SPLITS}
    if not len(arrays["train"][1]) + len(arrays["val"][1]):
        raise DataImportError(f"{path} holds no training images (train and val are empty); add some.")
    n_classes = 1 + max(int(labels.max()) for _, labels in arrays.values() if len(labels))
    if n_classes < 2:
        raise DataImportError(f"{path} holds a single class (0); a classification task needs at least 2.")
    if class_names is not None and len(class_names) < n_classes:
        raise DataImportError(
            f"{path} uses class indices 0..{n_classes - 1} but --classes names {len(class_names)}; "
            "name every class in index order."
        )
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    idx_to_class = dict(enumerate(names[:n_classes]))
    width = len(str(max(len(labels) for _, labels in arrays.values())))

    def sources(split: str) -> list[SourceImage]:
        images, labels = arrays[split]
        return [
            SourceImage(f"{split}_{i:0{width}d}", int(labels[i]), lambda i=i: Image.fromarray(images[i]))
            for i in range(len(labels))
        ]

    return write_task(
        Path(data_dir), name, dataset or name, idx_to_class,
        sources("train") + sources("val"), sources("test"), n_folds, seed, str(path), overwrite,
    )  # fmt: skip
