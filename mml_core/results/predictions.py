"""Predictions of ``predict_fold`` steps: one ``predictions.npz`` per step, readable without torch.

Per split (test, val, unlabeled) the file holds the outputs under the field of the task's type
(:data:`OUTPUT_FIELD`), ``<split>/targets`` and ``<split>/sample_ids`` (N, str), plus ``task_type``:

- classification: ``logits`` (N x classes, float32), targets (N, int64; -1 where unlabeled);
- multilabel_classification: ``logits`` (N x classes, float32; sigmoid gives each label's
  probability), targets (N x classes, float32: 0/1 or soft; -1 where unlabeled);
- regression: ``values`` (N, float32), targets (N, float32; NaN where unlabeled);
- semantic_segmentation: ``masks`` (N x H x W, uint8: the predicted class of each pixel at the
  network's input size), targets likewise (255: ignored or unlabeled), and ``<split>/examples``
  (the first few input images, uint8 N x H x W x 3, before normalization) for overlay plots.

The archive is compressed (masks compress well), so any numpy user, and ``finish_exp``, which must
stay cheap, can read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from mml_core.io import atomic_write

FILENAME = "predictions.npz"
# how many input images a segmentation task's predictions keep per split, for overlay plots
N_EXAMPLES = 4
# where each task type's outputs are stored
OUTPUT_FIELD = {
    "classification": "logits",
    "multilabel_classification": "logits",
    "regression": "values",
    "semantic_segmentation": "masks",
}
_DTYPES = {"logits": np.float32, "values": np.float32, "masks": np.uint8, "examples": np.uint8}


def write_predictions(
    path: Path, splits: Mapping[str, Mapping[str, np.ndarray | list[str]]], task_type: str = "classification"
) -> Path:
    """Write ``{split: {<output field>, "targets", "sample_ids", ...}}`` of a ``task_type`` task to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {"task_type": np.asarray(task_type)}
    for split, entry in splits.items():
        for field, values in entry.items():
            if field == "sample_ids":
                arrays[f"{split}/{field}"] = np.asarray(values, dtype=str)
            elif field == "targets":
                arrays[f"{split}/{field}"] = np.asarray(values, dtype=np.int64 if task_type == "classification" else None)
            else:
                arrays[f"{split}/{field}"] = np.asarray(values, dtype=_DTYPES.get(field))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(Path(path), write)


class PredictionsError(ValueError):
    """A predictions file that cannot be read; the message names it and the fix."""


def read_predictions(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {<field>: array}}`` from a predictions file (the task type under ``task_type``).

    A file that cannot be read is moved aside to ``<name>.corrupt`` (kept) and :class:`PredictionsError`
    raised: the step that wrote it recorded the file, so the next plan sees it missing and redoes that step.
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            splits: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                split, _, field = key.partition("/")
                if field:
                    splits.setdefault(split, {})[field] = data[key]
    except FileNotFoundError:
        raise PredictionsError(
            f"Predictions file {path} is missing. Run the same snakemake command again: planning redoes the step "
            "that wrote it."
        ) from None
    except Exception as exc:  # numpy and zipfile raise many types for damaged files
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        raise PredictionsError(
            f"Predictions file {path} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); moved it to "
            f"{aside.name}. Run the same snakemake command again: planning redoes the step that wrote it."
        ) from None
    return splits


def pooled_arrays(paths: Iterable[Path], fields: tuple[str, ...], split: str = "test") -> dict[str, np.ndarray]:
    """``fields`` of ``split``, concatenated over the files (one per fold).

    Every fold's model predicts the same test split, so pooled counts are predictions, not
    samples: a plot of them shows the folds' average behaviour.
    """
    pooled: dict[str, list[np.ndarray]] = {field: [] for field in fields}
    for path in paths:
        predictions = read_predictions(path)
        if split not in predictions:
            raise KeyError(
                f"{path} has no split '{split}' (it has {sorted(predictions)}); rerun its predict_fold step."
            )
        entry = predictions[split]
        if len(entry["targets"]):
            for field in fields:
                pooled[field].append(entry[field])
    return {field: np.concatenate(arrays) if arrays else np.empty(0) for field, arrays in pooled.items()}


def pooled_predictions(paths: Iterable[Path], split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``(targets, predicted classes)`` of a classification task's ``split``, pooled over the files."""
    pooled = pooled_arrays(paths, ("targets", "logits"), split)
    if not len(pooled["targets"]):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return pooled["targets"], pooled["logits"].argmax(axis=1)
