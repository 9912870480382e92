"""Predictions of ``predict_fold`` steps: one ``predictions.npz`` per step, readable without torch.

Per split (test, val, unlabeled) the file holds ``<split>/logits`` (N x classes, float32),
``<split>/targets`` (N, int64; -1 where unlabeled) and ``<split>/sample_ids`` (N, str), so any
numpy user (and ``finish_exp``, which must stay cheap) can read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from mml_core.io import atomic_write

FILENAME = "predictions.npz"


def write_predictions(path: Path, splits: Mapping[str, Mapping[str, np.ndarray | list[str]]]) -> Path:
    """Write ``{split: {"logits", "targets", "sample_ids"}}`` to ``path`` atomically."""
    arrays = {}
    for split, entry in splits.items():
        arrays[f"{split}/logits"] = np.asarray(entry["logits"], dtype=np.float32)
        arrays[f"{split}/targets"] = np.asarray(entry["targets"], dtype=np.int64)
        arrays[f"{split}/sample_ids"] = np.asarray(entry["sample_ids"], dtype=str)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(Path(path), write)


class PredictionsError(ValueError):
    """A predictions file that cannot be read; the message names it and the fix."""


def read_predictions(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``{split: {"logits", "targets", "sample_ids"}}`` from a predictions file.

    A file that cannot be read is moved aside to ``<name>.corrupt`` (kept) and :class:`PredictionsError`
    raised: the step that wrote it recorded the file, so the next plan sees it missing and redoes that step.
    """
    path = Path(path)
    try:
        with np.load(path) as data:
            splits: dict[str, dict[str, np.ndarray]] = {}
            for key in data.files:
                split, _, field = key.partition("/")
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


def pooled_predictions(paths: Iterable[Path], split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """``(targets, predicted classes)`` of ``split``, concatenated over the files (one per fold).

    Every fold's model predicts the same test split, so pooled counts are predictions, not
    samples: a confusion matrix of them shows the folds' average behaviour.
    """
    targets, predicted = [], []
    for path in paths:
        predictions = read_predictions(path)
        if split not in predictions:
            raise KeyError(
                f"{path} has no split '{split}' (it has {sorted(predictions)}); rerun its predict_fold step."
            )
        entry = predictions[split]
        if len(entry["targets"]):
            targets.append(entry["targets"])
            predicted.append(entry["logits"].argmax(axis=1))
    if not targets:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(targets), np.concatenate(predicted)
