"""Demo tasks built from scikit-learn's digits (shipped inside scikit-learn: no download).

``write_demo_tasks`` writes the 1,797 8x8 images once as PNG files and one MML task file per demo
task into ``<data_dir>/RAW/DSET_sklearn_digits/``. The split is fixed (seed 0, independent of the
experiment seed): 20 % stratified test split, five stratified folds over the rest. Derived tasks
reuse the images: parity (even/odd) and "low" (digits 0-4 only) give multi-task settings
something to work with.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from mml_core.tasks.description import TaskDescription, write_task_file
from mml_core.tasks.index import task_file_path

logger = logging.getLogger(__name__)

DATASET = "sklearn_digits"
N_FOLDS = 5
TEST_FRACTION = 0.2
_SPLIT_SEED = 0

# task name -> (description, label mapping digit -> class index or None to drop, class names)
DEMO_TASKS: dict[str, tuple[str, dict[int, int | None], dict[int, str]]] = {
    "sk_digits": (
        "Handwritten digit recognition (10 classes) on scikit-learn's 8x8 digits.",
        {d: d for d in range(10)},
        {d: str(d) for d in range(10)},
    ),
    "sk_digits_parity": (
        "Is the handwritten digit even or odd? (scikit-learn's 8x8 digits)",
        {d: d % 2 for d in range(10)},
        {0: "even", 1: "odd"},
    ),
    "sk_digits_low": (
        "Digits 0-4 only (5 classes) of scikit-learn's 8x8 digits.",
        {d: (d if d < 5 else None) for d in range(10)},
        {d: str(d) for d in range(5)},
    ),
}


def demo_task_files(data_dir: Path) -> dict[str, Path]:
    """Task name -> path of its task file, for every demo task (whether written yet or not)."""
    return {name: task_file_path(data_dir, DATASET, name) for name in DEMO_TASKS}


def write_demo_tasks(data_dir: Path) -> list[Path]:
    """Write the digits images and all demo task files under ``data_dir``; return the task files."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, train_test_split

    dset_root = task_file_path(data_dir, DATASET, "x").parent
    image_dir = dset_root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    labels = digits.target.astype(int)
    ids = [f"digit_{i:04d}" for i in range(len(labels))]
    for sample_id, image in zip(ids, images):
        path = image_dir / f"{sample_id}.png"
        if not path.exists():
            Image.fromarray(image).save(path)
    logger.info("Wrote %d digit images to %s", len(ids), image_dir)

    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(
        index, test_size=TEST_FRACTION, stratify=labels, random_state=_SPLIT_SEED
    )
    fold_of = {}
    folds = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=_SPLIT_SEED)
    for fold, (_, val_idx) in enumerate(folds.split(train_idx, labels[train_idx])):
        for i in train_idx[val_idx]:
            fold_of[int(i)] = fold

    pixels = images[train_idx].astype(np.float64) / 255.0
    mean, std = float(pixels.mean()), float(pixels.std())
    written = []
    for name, (text, mapping, classes) in DEMO_TASKS.items():

        def samples(indices: np.ndarray) -> dict[str, dict]:
            return {
                ids[i]: {"image": f"images/{ids[i]}.png", "class": mapping[labels[i]]}
                for i in indices
                if mapping[labels[i]] is not None
            }

        train, test = samples(train_idx), samples(test_idx)
        desc = TaskDescription(
            name=name,
            task_type="classification",
            description=text,
            reference="Alpaydin & Kaynak, Optical Recognition of Handwritten Digits, UCI ML Repository (1998)",
            url="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
            download="shipped with scikit-learn",
            license="CC BY 4.0",
            release="1998",
            keywords=["handwritten digits", "demo"],
            idx_to_class=dict(classes),
            modalities={"image": f"RAW/DSET_{DATASET}", "class": f"RAW/DSET_{DATASET}"},
            train_folds=[[i for i in train if fold_of[int(i.split("_")[1])] == f] for f in range(N_FOLDS)],
            train_samples=train,
            test_samples=test,
            unlabeled_samples={},
            means={"r": mean, "g": mean, "b": mean},
            stds={"r": std, "g": std, "b": std},
            sizes={"min_height": 8, "max_height": 8, "min_width": 8, "max_width": 8},
            class_occ={classes[c]: n for c, n in sorted(Counter(s["class"] for s in train.values()).items())},
        )
        written.append(write_task_file(desc, task_file_path(data_dir, DATASET, name)))
    logger.info("Wrote demo tasks %s to %s", ", ".join(DEMO_TASKS), dset_root)
    return written
