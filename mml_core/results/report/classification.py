"""Curves and per-class tables of a classification task's test predictions, per fold and pooled.

Input: the ``predictions.npz`` of each fold's model (logits and targets of the test split, see
:mod:`mml_core.results.predictions`). Output per task: ROC and precision-recall curves
(``plots/roc_pr/<task>.png``), a reliability diagram (``plots/calibration/<task>.png``) and
per-class precision, recall and F1 (``tables/per_class/<task>.html`` and ``.csv``). Tasks with
more than two classes use the macro average of one-vs-rest curves, as the summary's AUROC and
average precision (torchmetrics' default) do. matplotlib and scikit-learn are imported inside the
functions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mml_core.io import atomic_write_text
from mml_core.results import outputs
from mml_core.results.plots import _figure, _fold_colour, _save
from mml_core.results.predictions import read_predictions
from mml_core.results.report import html
from mml_core.results.summary import aggregate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GRID = np.linspace(0.0, 1.0, 201)
CALIBRATION_BINS = 10
# (targets, logits) of one model on the test split
Scores = tuple[np.ndarray, np.ndarray]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits (rows sum to 1)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def labelled_test_scores(paths: Mapping[int, Path]) -> dict[int, Scores]:
    """``{fold: (targets, logits)}`` of the labelled test samples in each fold's predictions file."""
    scores = {}
    for fold, path in paths.items():
        test = read_predictions(path)["test"]
        labelled = test["targets"] >= 0
        if labelled.any():
            scores[fold] = (test["targets"][labelled], test["logits"][labelled])
    return scores


def pooled(scores: Mapping[int, Scores]) -> Scores:
    """Every model's test predictions together."""
    return np.concatenate([t for t, _ in scores.values()]), np.concatenate([s for _, s in scores.values()])


def _one_vs_rest(targets: np.ndarray, probs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(is the class, its probability) for the second class of a binary task, else for every class
    that has positives and negatives."""
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    pairs = [(targets == c, probs[:, c]) for c in classes]
    return [(y, p) for y, p in pairs if 0 < y.sum() < len(y)]


def mean_roc(targets: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Macro-averaged ROC curve on :data:`GRID` (false positive rate -> true positive rate) and its area."""
    from sklearn.metrics import roc_auc_score, roc_curve

    tprs, areas = [], []
    for y, p in _one_vs_rest(targets, softmax(logits)):
        fpr, tpr, _ = roc_curve(y, p)
        tprs.append(np.interp(GRID, fpr, tpr))
        areas.append(roc_auc_score(y, p))
    if not tprs:
        return GRID, np.full_like(GRID, np.nan), float("nan")
    curve = np.mean(tprs, axis=0)
    curve[0] = 0.0
    return GRID, curve, float(np.mean(areas))


def mean_pr(targets: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Macro-averaged precision-recall curve on :data:`GRID` (recall -> interpolated precision), its
    average precision and the mean prevalence (the precision of chance)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precisions, areas, prevalence = [], [], []
    for y, p in _one_vs_rest(targets, softmax(logits)):
        precision, recall, _ = precision_recall_curve(y, p)  # recall falls from 1 to 0
        # interpolated precision: the best precision at this recall or beyond, by rising recall
        best = np.maximum.accumulate(precision)[::-1]
        precisions.append(np.interp(GRID, recall[::-1], best))
        areas.append(average_precision_score(y, p))
        prevalence.append(y.mean())
    if not precisions:
        return GRID, np.full_like(GRID, np.nan), float("nan"), float("nan")
    return GRID, np.mean(precisions, axis=0), float(np.mean(areas)), float(np.mean(prevalence))


def roc_pr_curves(scores: Mapping[int, Scores], task: str, out: Path) -> Figure:
    """ROC (left) and PR (right): a thin line per fold's model, the pooled predictions in black."""
    figure = _figure(11, 4.6)
    roc_ax, pr_ax = figure.subplots(1, 2)
    curves = [(f"fold {fold}", _fold_colour(i), 1.2, s) for i, (fold, s) in enumerate(sorted(scores.items()))]
    curves.append((f"pooled ({len(scores)} model{'s' if len(scores) > 1 else ''})", "black", 2.2, pooled(scores)))
    prevalence = float("nan")
    for label, colour, width, (targets, logits) in curves:
        fpr, tpr, auc = mean_roc(targets, logits)
        roc_ax.plot(fpr, tpr, color=colour, linewidth=width, label=f"{label}: AUC {auc:.4f}")
        recall, precision, ap, prevalence = mean_pr(targets, logits)
        pr_ax.plot(recall, precision, color=colour, linewidth=width, label=f"{label}: AP {ap:.4f}")
    roc_ax.plot([0, 1], [0, 1], color="0.5", linestyle=":")
    pr_ax.axhline(prevalence, color="0.5", linestyle=":")
    for ax, (x, y) in ((roc_ax, ("false positive rate", "true positive rate")), (pr_ax, ("recall", "precision"))):
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel=x, ylabel=y)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is roc_ax else "lower left", fontsize=8)
    roc_ax.set_title("ROC")
    pr_ax.set_title("precision-recall")
    classes = next(iter(scores.values()))[1].shape[1]
    kind = "binary (second class)" if classes == 2 else f"macro average over {classes} classes, one-vs-rest"
    figure.suptitle(f"{task}: test split, {kind}")
    _save(figure, out)
    return figure


def calibration_bins(targets: np.ndarray, logits: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: ``count``, ``accuracy``, ``confidence`` (mean), plus ``ece``."""
    probs = softmax(logits)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == targets
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins)
    safe = np.maximum(count, 1)
    accuracy = np.bincount(index, weights=correct, minlength=bins) / safe
    mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / safe
    ece = float(np.sum(count / max(len(targets), 1) * np.abs(accuracy - mean_confidence)))
    return {"count": count, "accuracy": accuracy, "confidence": mean_confidence, "ece": np.asarray(ece)}


def reliability_diagram(scores: Mapping[int, Scores], task: str, out: Path) -> Figure:
    """Accuracy per confidence bin of the pooled predictions (bars) and the bins' mean confidence
    (red) against the diagonal; how many predictions fall into each bin below."""
    targets, logits = pooled(scores)
    binned = calibration_bins(targets, logits)
    figure = _figure(6, 6)
    top, bottom = figure.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    width = 1.0 / CALIBRATION_BINS
    left = np.arange(CALIBRATION_BINS) * width
    filled = binned["count"] > 0
    top.bar(left[filled], binned["accuracy"][filled], width=width, align="edge", color="C0", alpha=0.8,
            edgecolor="white", label="accuracy")  # fmt: skip
    top.plot(left[filled] + width / 2, binned["confidence"][filled], "o", color="C3", label="mean confidence")
    top.plot([0, 1], [0, 1], color="0.3", linestyle=":", label="perfectly calibrated")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
    top.legend(loc="upper left", fontsize=8)
    models = f"{len(scores)} model{'s' if len(scores) > 1 else ''}"
    top.set_title(f"{task}: test split, {models} pooled, ECE {float(binned['ece']):.4f}")
    bottom.bar(left, binned["count"], width=width, align="edge", color="0.6", edgecolor="white")
    bottom.set(xlabel="confidence (largest class probability)", ylabel="predictions")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    _save(figure, out)
    return figure


def per_class_rows(scores: Mapping[int, Scores], class_names: Sequence[str]) -> list[dict[str, object]]:
    """Per class: support, precision/recall/F1 per fold (mean, std) and of the pooled predictions."""
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(len(class_names)))

    def measure(targets: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return np.asarray(precision_recall_fscore_support(
            targets, logits.argmax(axis=1), labels=labels, zero_division=0)[:3])  # fmt: skip

    per_fold = [measure(*s) for _, s in sorted(scores.items())]
    all_targets, all_logits = pooled(scores)
    together = measure(all_targets, all_logits)
    support = np.bincount(next(iter(scores.values()))[0], minlength=len(labels))
    rows = []
    for c, name in enumerate(class_names):
        row: dict[str, object] = {"class": name, "support": int(support[c])}
        for m, metric in enumerate(("precision", "recall", "f1")):
            agg = aggregate(values[m, c] for values in per_fold)
            row |= {f"{metric}_mean": agg["mean"], f"{metric}_std": agg["std"], f"{metric}_pooled": float(together[m, c])}
        rows.append(row)
    return rows


def write_per_class(rows: Sequence[Mapping[str, object]], task: str, folder: Path) -> list[Path]:
    """``<task>.csv`` (every number) and ``<task>.html`` (mean ± std over folds, pooled) in ``folder``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    header = ["class", "support"] + [f"{m} ({kind})" for m in ("precision", "recall", "F1") for kind in ("folds", "pooled")]
    cells = [
        [str(r["class"]), str(r["support"])]
        + [cell for m in ("precision", "recall", "f1")
           for cell in (f"{r[f'{m}_mean']:.4f} ± {r[f'{m}_std']:.4f}", f"{r[f'{m}_pooled']:.4f}")]
        for r in rows
    ]  # fmt: skip
    note = "folds: mean ± std over the folds' models; pooled: all models' predictions together"
    page = html.page(f"{task}: per-class metrics on the test split", html.table(header, cells), html.paragraph(note, True))
    return [atomic_write_text(folder / f"{task}.csv", buffer.getvalue()), atomic_write_text(folder / f"{task}.html", page)]


def classification_report(results_dir: Path, task: str, paths: Mapping[int, Path], class_names: Sequence[str]) -> bool:
    """Curves, reliability diagram and per-class tables of ``task`` from each fold's predictions file;
    False where the test split has no labelled samples."""
    scores = labelled_test_scores(paths)
    if not scores:
        return False
    roc_pr_curves(scores, task, outputs.task_plot(results_dir, outputs.ROC_PR_DIR, task))
    reliability_diagram(scores, task, outputs.task_plot(results_dir, outputs.CALIBRATION_DIR, task))
    write_per_class(per_class_rows(scores, class_names), task, Path(results_dir) / outputs.PER_CLASS_DIR)
    return True
