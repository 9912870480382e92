"""Demo tasks built from scikit-learn's digits (shipped inside scikit-learn: no download).

``write_demo_tasks`` writes the 1,797 8x8 images as PNG files and one MML task file per demo task
into ``<data_dir>/RAW/DSET_sklearn_digits/``, every file atomically and the task files last: an
interrupted first write (SIGKILL, full disk) leaves complete files or none and no task file, so
the ``demo_tasks`` rule runs again and rewrites what is missing or differs (the images are encoded
in memory and compared with the files on disk, so unchanged files keep their modification time;
:func:`~mml_core.tasks.demo_types.write_pngs`). The split is fixed (seed 0, independent of the
experiment seed): 20 % stratified test split, five stratified folds over the rest. Derived tasks
reuse the images: parity (even/odd) and "low" (digits 0-4 only) give multi-task settings
something to work with; "shifted" (the same digits moved one pixel right and down, 10 classes
like sk_digits) is a small domain shift to evaluate on (``mode.eval_on``). The demo tasks of the
other task types (multi-label, regression, segmentation) come from :mod:`mml_core.tasks.demo_types`;
``DEMO_TASKS`` and :func:`write_demo_tasks` cover them all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from mml_core.tasks.description import (
    RGB_KEYS,
    SIZE_KEYS,
    TaskDescription,
    count_classes,
    write_task_file,
)
from mml_core.tasks.demo_types import TYPED_DEMO_TASKS, typed_demo_task_files, write_pngs, write_typed_demo_tasks
from mml_core.tasks.index import dataset_dir, task_file_path
from mml_core.tasks.splits import make_folds, split_test
from mml_core.tasks.types import png_modalities

logger = logging.getLogger(__name__)

DATASET = "sklearn_digits"
N_FOLDS = 5
TEST_FRACTION = 0.2
_SPLIT_SEED = 0

# task name -> (description, label mapping digit -> class index or None to drop, class names, image folder)
DIGITS_TASKS: dict[str, tuple[str, dict[int, int | None], dict[int, str], str]] = {
    "sk_digits": (
        "Handwritten digit recognition (10 classes) on scikit-learn's 8x8 digits.",
        {d: d for d in range(10)},
        {d: str(d) for d in range(10)},
        "images",
    ),
    "sk_digits_parity": (
        "Is the handwritten digit even or odd? (scikit-learn's 8x8 digits)",
        {d: d % 2 for d in range(10)},
        {0: "even", 1: "odd"},
        "images",
    ),
    "sk_digits_low": (
        "Digits 0-4 only (5 classes) of scikit-learn's 8x8 digits.",
        {d: (d if d < 5 else None) for d in range(10)},
        {d: str(d) for d in range(5)},
        "images",
    ),
    "sk_digits_shifted": (
        "scikit-learn's 8x8 digits moved one pixel right and down (10 classes): a small domain shift.",
        {d: d for d in range(10)},
        {d: str(d) for d in range(10)},
        "images_shifted",
    ),
}


# every demo task -> its task type
DEMO_TASKS: dict[str, str] = {
    **dict.fromkeys(DIGITS_TASKS, "classification"),
    **{name: type_name for name, (_, type_name) in TYPED_DEMO_TASKS.items()},
}


def demo_task_files(data_dir: Path) -> dict[str, Path]:
    """Task name -> path of its task file, for every demo task (whether written yet or not)."""
    return {**{name: task_file_path(data_dir, DATASET, name) for name in DIGITS_TASKS}, **typed_demo_task_files(data_dir)}


def write_demo_tasks(data_dir: Path, names: Iterable[str] | None = None) -> list[Path]:
    """Write the images and task files of the demo tasks ``names`` (default: all) under ``data_dir``;
    return the task files. Tasks sharing images are written together (all digits tasks at once)."""
    typed = write_typed_demo_tasks(data_dir, names)
    if names is not None and not set(names) & set(DIGITS_TASKS):
        return typed
    import numpy as np
    from sklearn.datasets import load_digits

    dset_root = dataset_dir(data_dir, DATASET)
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    shifted = np.zeros_like(images)
    shifted[:, 1:, 1:] = images[:, :-1, :-1]
    labels = digits.target.astype(int)
    ids = [f"digit_{i:04d}" for i in range(len(labels))]
    for folder, variant in (("images", images), ("images_shifted", shifted)):
        write_pngs(dset_root / folder, ids, variant)

    label_of = dict(zip(ids, labels.tolist()))
    train_ids, test_ids = split_test(ids, labels, TEST_FRACTION, _SPLIT_SEED)
    folds = make_folds(train_ids, [label_of[i] for i in train_ids], N_FOLDS, _SPLIT_SEED)
    position = {i: k for k, i in enumerate(ids)}
    pixels = images[[position[i] for i in train_ids]].astype(np.float64) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())
    written = []
    for name, (text, mapping, classes, folder) in DIGITS_TASKS.items():
        kept = {i: mapping[label_of[i]] for i in ids if mapping[label_of[i]] is not None}
        train, test = (
            {i: {"image": f"{folder}/{i}.png", "class": kept[i]} for i in split if i in kept}
            for split in (train_ids, test_ids)
        )
        desc = TaskDescription(
            name=name,
            task_type="classification",
            description=text,
            creation_protocol=f"Written by mml_core.tasks.demo, split seed {_SPLIT_SEED}.",
            reference="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI ML Repository 1998",
            url="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
            download="shipped with scikit-learn",
            license="CC BY 4.0",
            release="1998",
            keywords=["handwritten digits", "demo"],
            idx_to_class=dict(classes),
            modalities=png_modalities("classification"),
            train_folds=[[i for i in fold if i in kept] for fold in folds],
            train_samples=train,
            test_samples=test,
            unlabeled_samples={},
            means=dict.fromkeys(RGB_KEYS, mean),
            stds=dict.fromkeys(RGB_KEYS, std),
            sizes=dict.fromkeys(SIZE_KEYS, 8),
            class_occ=count_classes(classes, [s["class"] for s in train.values()]),
        )
        written.append(write_task_file(desc, task_file_path(data_dir, DATASET, name)))
    logger.info("Wrote demo tasks %s to %s", ", ".join(DIGITS_TASKS), dset_root)
    return written + typed
