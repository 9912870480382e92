"""Bring your own data of the other task types: segmentation masks, multi-label labels, regression values.

- :func:`import_masks` (semantic_segmentation): ``IMAGES/**/<image>`` with a mask of the same relative
  path in ``MASKS/`` (PNG, any image suffix replaced by ``.png``); a mask is a grey image of class
  indices 0..C-1 (``--classes`` names them in that order; by default the values found), 255 for
  ignored pixels; 16-bit masks are read as stored (values above 254 other than 255 are refused). Every
  mask is checked before anything is written: readable, same size as its image, no value outside the
  class list.
- :func:`import_csv`: ``IMAGES/`` plus a CSV with a column ``image`` (paths relative to ``IMAGES``) and
  the targets. multilabel_classification: a column ``labels`` of class names joined by
  ``--separator`` (``|``, as in NIH ChestX-ray14's "Finding Labels"; empty: no label), or one 0/1
  column per class; ``--classes`` fixes the class list (default: the names found, sorted).
  regression: a column ``value`` of numbers; ``idx_to_class`` records the bounds (MML's min/max).

Images are read by :func:`~mml_core.tasks.images.open_image` (16-bit and float images stretched to
8 bit) and :func:`~mml_core.tasks.importers.write_task` writes them and the masks as PNGs, each
atomically, and the task file last, as for classification; the test split and the folds are drawn
at random (no class to stratify by).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mml_core.tasks.importers import DataImportError, SourceImage, image_reader, image_suffixes, write_task
from mml_core.tasks.masks import image_size, read_raw_mask
from mml_core.tasks.splits import split_test
from mml_core.tasks.types import IGNORE_INDEX, MULTILABEL, REGRESSION, SEGMENTATION

CSV_TYPES = (MULTILABEL, REGRESSION)


def _image_files(src: Path) -> list[Path]:
    suffixes = image_suffixes()
    return sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes)


def _split(sources: list[SourceImage], test_fraction: float, seed: int, where: str) -> tuple[list, list]:
    if not 0 <= test_fraction < 1:
        raise DataImportError(f"--test-fraction must be in [0, 1), got {test_fraction}.")
    by_id = {s.sample_id: s for s in sources}
    try:
        train, test = split_test(list(by_id), None, test_fraction, seed)
    except ValueError as exc:
        raise DataImportError(f"Cannot hold out a test split of {test_fraction} from {where} ({exc}); add images.") from None
    return [by_id[i] for i in train], [by_id[i] for i in test]


def _check_folder(path: Path, what: str) -> None:
    if not Path(path).is_dir():
        raise DataImportError(f"{what} {path} does not exist. Pass the folder that holds them.")


def import_masks(
    images: Path,
    masks: Path,
    data_dir: Path,
    name: str,
    classes: Sequence[str] | None = None,
    dataset: str | None = None,
    n_folds: int = 5,
    test_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Import ``images`` with their masks in ``masks`` as segmentation task ``name``; return the task file."""
    images, masks = Path(images), Path(masks)
    _check_folder(images, "Image folder")
    _check_folder(masks, "Mask folder")
    pairs = [(path, masks / path.relative_to(images).with_suffix(".png")) for path in _image_files(images)]
    if not pairs:
        raise DataImportError(f"{images} holds no images. Pass the folder of the images to segment.")
    missing = [str(mask) for _, mask in pairs if not mask.is_file()]
    if missing:
        raise DataImportError(
            f"{len(missing)} image(s) have no mask, first: {', '.join(missing[:3])}. Each image IMAGES/<path> needs "
            "MASKS/<path> with the suffix .png; add the masks or remove those images."
        )
    found: set[int] = set()
    for image_path, mask_path in pairs:
        mask = _read_mask(mask_path)
        try:
            size = image_size(image_path)
        except OSError as exc:
            raise DataImportError(f"Cannot read image {image_path} ({exc}). Remove or repair the file.") from None
        if mask.shape != size:
            raise DataImportError(
                f"Mask {mask_path} is {mask.shape[0]}x{mask.shape[1]} (HxW) but its image {image_path} is "
                f"{size[0]}x{size[1]}; a mask must have its image's size. Fix or remove the pair."
            )
        values = {int(v) for v in np.unique(mask)} - {IGNORE_INDEX}
        if values - set(range(IGNORE_INDEX)):
            raise DataImportError(
                f"Mask {mask_path} holds value(s) {sorted(values - set(range(IGNORE_INDEX)))[:5]}; mask values are class "
                f"indices 0..{IGNORE_INDEX - 1} ({IGNORE_INDEX}: ignored). Convert the masks to 8-bit class indices."
            )
        if classes is not None and values - set(range(len(classes))):
            raise DataImportError(
                f"Mask {mask_path} holds value(s) {sorted(values - set(range(len(classes))))} outside the class list "
                f"(0..{len(classes) - 1}: {', '.join(classes)}; {IGNORE_INDEX} marks ignored pixels). Fix the mask or "
                "--classes."
            )
        found |= values
    idx_to_class = dict(enumerate(classes)) if classes is not None else {v: str(v) for v in sorted(found)}
    if len(idx_to_class) < 2:
        raise DataImportError(f"The masks in {masks} show {len(idx_to_class)} class(es); a segmentation task needs 2.")
    sources = [
        SourceImage(
            image_path.relative_to(images).with_suffix("").as_posix(), -1, image_reader(image_path),
            read_mask=lambda m=mask_path: _read_mask(m).astype(np.uint8),
        )  # fmt: skip
        for image_path, mask_path in pairs
    ]
    train, test = _split(sources, test_fraction, seed, str(images))
    return write_task(
        Path(data_dir), name, dataset or name, idx_to_class, train, test, n_folds, seed, f"{images} + {masks}",
        overwrite, task_type=SEGMENTATION,
    )  # fmt: skip


def _read_mask(path: Path) -> np.ndarray:
    """The raw values of the mask at ``path`` (8 or 16 bit, read as stored; errors name the file)."""
    try:
        return read_raw_mask(path)
    except OSError as exc:
        raise DataImportError(f"Cannot read mask {path} ({exc}). Remove or repair the file (and its image).") from None


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise DataImportError(f"{where}: value {text!r} is not a number. Fix the CSV (one number per row).")
    return value


def _multilabel_entries(
    rows: list[dict[str, str]], columns: list[str], classes: Sequence[str] | None, separator: str, where: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each row's ``classes`` entry and the class list, from a ``labels`` column or 0/1 columns."""
    if "labels" in columns:
        named = [[label.strip() for label in row["labels"].split(separator) if label.strip()] for row in rows]
        names = list(classes) if classes is not None else sorted({label for labels in named for label in labels})
        for number, labels in enumerate(named, start=2):
            outside = [label for label in labels if label not in names]
            if outside:
                raise DataImportError(
                    f"{where}, row {number}: label(s) {outside} of image {rows[number - 2]['image']} are not in the class "
                    f"list ({', '.join(names)}). Add them to --classes or fix the CSV."
                )
        return [{"classes": sorted(names.index(label) for label in set(labels))} for labels in named], names
    names = [c for c in columns if c != "image"]
    if classes is not None and list(classes) != names:
        raise DataImportError(f"{where}: --classes {list(classes)} differ from the CSV's class columns {names}.")
    entries = []
    for number, row in enumerate(rows, start=2):
        bad = {c: row[c] for c in names if row[c].strip() not in ("0", "1")}
        if bad:
            raise DataImportError(
                f"{where}, row {number}: class column(s) {bad} of image {row['image']} are not 0 or 1. Fix the CSV."
            )
        entries.append({"classes": [k for k, c in enumerate(names) if row[c].strip() == "1"]})
    return entries, names


def import_csv(
    images: Path,
    table: Path,
    data_dir: Path,
    name: str,
    task_type: str,
    classes: Sequence[str] | None = None,
    separator: str = "|",
    dataset: str | None = None,
    n_folds: int = 5,
    test_fraction: float = 0.2,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Import ``images`` labelled by the CSV ``table`` as a ``task_type`` task ``name``; return the task file."""
    images, table = Path(images), Path(table)
    _check_folder(images, "Image folder")
    if task_type not in CSV_TYPES:
        raise DataImportError(f"--task-type must be one of {', '.join(CSV_TYPES)}, got {task_type!r}.")
    if not table.is_file():
        raise DataImportError(f"{table} does not exist. Pass the CSV of labels.")
    with open(table, newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = list(reader.fieldnames or []), list(reader)
    needed = {"image", "value"} if task_type == REGRESSION else {"image"}
    if not needed <= set(columns) or not rows:
        raise DataImportError(
            f"{table} has the columns {columns} and {len(rows)} row(s); a {task_type} CSV needs the column(s) "
            f"{', '.join(sorted(needed))}{'' if task_type == REGRESSION else ' and labels (or one 0/1 column per class)'} "
            "and a row per image."
        )
    missing = [row["image"] for row in rows if not (images / row["image"]).is_file()]
    if missing:
        raise DataImportError(
            f"{len(missing)} image(s) named in {table} are not in {images}, first: {', '.join(missing[:3])}. The column "
            "'image' holds paths relative to the image folder."
        )
    if task_type == REGRESSION:
        values = [_number(row["value"], f"{table}, row {n} (image {row['image']})") for n, row in enumerate(rows, start=2)]
        entries = [{"value": v} for v in values]
        low, high = math.floor(min(values)), math.ceil(max(values))
        idx_to_class = {low: "min", max(high, low + 1): "max"}
    else:
        entries, names = _multilabel_entries(rows, columns, classes, separator, str(table))
        idx_to_class = dict(enumerate(names))
    sources, seen = [], set()
    for row, entry in zip(rows, entries):
        sample_id = Path(row["image"]).with_suffix("").as_posix()
        if sample_id in seen:
            raise DataImportError(f"{table} lists image {row['image']} twice (or two files of that name); keep one row.")
        seen.add(sample_id)
        sources.append(SourceImage(sample_id, -1, image_reader(images / row["image"]), entry=entry))
    train, test = _split(sources, test_fraction, seed, str(table))
    return write_task(
        Path(data_dir), name, dataset or name, idx_to_class, train, test, n_folds, seed, f"{images} + {table}",
        overwrite, task_type=task_type,
    )  # fmt: skip
