"""The plot of each task type's test predictions, and which metric its learning curves show.

- classification: the confusion matrix (:func:`mml_core.results.plots.confusion_matrix`);
- multilabel_classification: one ROC curve per label, models pooled;
- regression: truth against prediction, models pooled, with the identity line;
- semantic_segmentation: a few test images, their true and their predicted masks (fold 0's model).

Like :mod:`mml_core.results.plots`: own ``Figure`` per plot (Agg), atomic PNG writes, fixed sizes;
numpy and matplotlib only, so ``finish_exp`` never imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mml_core.results import outputs
from mml_core.results.plots import _figure, _save, confusion_matrix
from mml_core.results.predictions import OUTPUT_FIELD, pooled_arrays, pooled_predictions, read_predictions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

# the metric beside the loss in learning curves (names as mml_core.models.metrics logs them)
CURVE_METRIC = {
    "classification": "acc",
    "multilabel_classification": "auroc",
    "regression": "mae",
    "semantic_segmentation": "dice",
}
# above this many labels the ROC legend no longer fits
MAX_LEGEND_LABELS = 20
IGNORED = 255


def multilabel_roc(targets: np.ndarray, logits: np.ndarray, class_names: Sequence[str], out: Path, title: str) -> Figure:
    """One ROC curve per label (labels without positives or negatives are left out), AUROC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _figure(7.5, 6)
    ax = figure.subplots()
    truth = targets > 0.5
    aucs = []
    for k, name in enumerate(class_names):
        if truth[:, k].all() or not truth[:, k].any():
            logger.warning("Label %s has only one class in the test split; no ROC curve.", name)
            continue
        fpr, tpr, _ = roc_curve(truth[:, k], logits[:, k])
        aucs.append(roc_auc_score(truth[:, k], logits[:, k]))
        ax.plot(fpr, tpr, color=f"C{k % 10}", linestyle="-" if k < 10 else "--", label=f"{name} ({aucs[-1]:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title(f"{title}\nmacro AUROC {np.mean(aucs):.3f}" if aucs else title)
    ax.grid(alpha=0.3)
    if aucs and len(aucs) <= MAX_LEGEND_LABELS:
        ax.legend(title="label (AUROC)", fontsize=8, loc="lower right")
    _save(figure, out)
    return figure


def regression_scatter(targets: np.ndarray, values: np.ndarray, out: Path, title: str) -> Figure:
    """Predicted against true values with the identity line; MAE and R² in the title."""
    figure = _figure(6, 6)
    ax = figure.subplots()
    ax.scatter(targets, values, s=10, alpha=0.5, color="C0", edgecolors="none")
    low, high = float(min(targets.min(), values.min())), float(max(targets.max(), values.max()))
    pad = (high - low) * 0.05 or 1.0
    ax.plot([low - pad, high + pad], [low - pad, high + pad], color="0.4", linestyle="--", linewidth=1)
    ax.set(xlim=(low - pad, high + pad), ylim=(low - pad, high + pad), xlabel="true value", ylabel="predicted value")
    ax.set_aspect("equal")
    mae = float(np.abs(values - targets).mean())
    variance = float(((targets - targets.mean()) ** 2).sum())
    r2 = 1.0 - float(((values - targets) ** 2).sum()) / variance if variance else float("nan")
    ax.set_title(f"{title}\nMAE {mae:.4g}, R² {r2:.3f}")
    ax.grid(alpha=0.3)
    _save(figure, out)
    return figure


def _colour_masks(masks: np.ndarray, n_classes: int) -> np.ndarray:
    """RGBA images of class masks: background (class 0) and ignored pixels transparent."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if n_classes <= 10 else "tab20"]
    colours = np.array([palette(k % palette.N) for k in range(max(n_classes, 1))])
    colours[0, 3] = 0.0
    rgba = colours[np.minimum(masks, len(colours) - 1)]
    rgba[..., 3] = np.where((masks == IGNORED) | (masks == 0), 0.0, 1.0)
    return rgba


def segmentation_overlays(
    examples: np.ndarray, targets: np.ndarray, masks: np.ndarray, class_names: Sequence[str], out: Path, title: str
) -> Figure:
    """Rows of test images: the image, the true mask over it, the predicted mask over it; a legend of classes."""
    from matplotlib.patches import Patch

    rows = len(examples)
    figure = _figure(7.5, 2.3 * max(rows, 1) + 0.8)
    axes = figure.subplots(max(rows, 1), 3, squeeze=False)
    for row in range(rows):
        for col, (label, mask) in enumerate((("image", None), ("truth", targets[row]), ("prediction", masks[row]))):
            ax = axes[row, col]
            # under a mask the image is dimmed, so the class colours read as in the legend
            ax.imshow(examples[row] if mask is None else (examples[row] * 0.35).astype(np.uint8), interpolation="nearest")
            if mask is not None:
                ax.imshow(_colour_masks(mask, len(class_names)), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label)
    colours = _colour_masks(np.arange(len(class_names)), len(class_names))
    handles = [Patch(color=colours[k][:3], label=name) for k, name in enumerate(class_names) if k > 0]
    figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5) or 1)
    figure.suptitle(title)
    _save(figure, out)
    return figure


def _models(paths: Sequence[Path]) -> str:
    return f"{len(paths)} model{'s' if len(paths) > 1 else ''}"


def plot_test_predictions(
    results_dir: Path, task: str, task_type: str, paths: Sequence[Path], class_names: Sequence[str]
) -> Path | None:
    """The plot of ``task``'s test predictions (files ``paths``, one per model) for its type; None without any."""
    field = OUTPUT_FIELD[task_type]
    if task_type == "semantic_segmentation":
        test = read_predictions(paths[0])["test"]
        if not len(test["targets"]):
            logger.warning("Task %s has no test predictions; no overlay plot.", task)
            return None
        rows = len(test["examples"])
        out = outputs.task_plot(results_dir, outputs.SEGMENTATION_OVERLAYS_DIR, task)
        segmentation_overlays(
            test["examples"][:rows], test["targets"][:rows], test[field][:rows], class_names, out,
            f"{task}: test images, the first fold's model",
        )  # fmt: skip
        return out
    if task_type == "classification":
        targets, predicted = pooled_predictions(paths)
    else:
        pooled = pooled_arrays(paths, ("targets", field))
        targets, predicted = pooled["targets"], pooled[field]
    if not len(targets):
        logger.warning("Task %s has no test predictions; no %s plot.", task, task_type)
        return None
    title = f"{task}: test split, {_models(paths)} pooled ({len(targets)} predictions)"
    if task_type == "classification":
        out = outputs.task_plot(results_dir, outputs.CONFUSION_MATRIX_DIR, task)
        confusion_matrix(targets, predicted, class_names, out, title=title)
    elif task_type == "multilabel_classification":
        out = outputs.task_plot(results_dir, outputs.ROC_CURVES_DIR, task)
        multilabel_roc(targets, predicted, class_names, out, title)
    else:
        out = outputs.task_plot(results_dir, outputs.REGRESSION_SCATTER_DIR, task)
        regression_scatter(targets, predicted, out, title)
    return out

