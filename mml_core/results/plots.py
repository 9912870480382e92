"""PNG plots of an experiment: learning curves, confusion matrices, per-fold metrics.

Each function draws on its own ``Figure`` with the Agg canvas (no pyplot state, no display
needed, safe in jobs), writes the PNG atomically and returns the figure so callers and tests can
inspect it. Sizes and dpi are fixed, so the same data gives the same image. matplotlib and
scikit-learn are imported inside the functions: importing ``mml_core.results`` stays cheap.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mml_core.io import atomic_write
from mml_core.results.tables import metric_columns

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

DPI = 100
METRIC_LABELS = {
    "acc": "accuracy",
    "balanced_acc": "balanced accuracy",
    "f1": "F1",
    "auroc": "AUROC",
    "loss": "loss",
    "mae": "MAE",
    "r2": "R²",
    "dice": "Dice",
    "iou": "IoU",
}
# above this many classes the cell values of a confusion matrix no longer fit
MAX_ANNOTATED_CLASSES = 20


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, out: Path) -> None:
    atomic_write(Path(out), lambda tmp: figure.savefig(tmp, format="png", dpi=DPI))
    logger.info("Wrote %s", out)


def _fold_colour(position: int) -> str:
    return f"C{position % 10}"


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def learning_curves(
    histories: Mapping[int, Sequence[Mapping[str, float]]], task: str, out: Path, metric: str = "acc"
) -> Figure:
    """Loss and ``metric`` per epoch of ``task``: one colour per fold, train solid, val dashed.

    ``histories`` maps fold -> the ``history`` a ``train_fold`` step recorded (one dict per epoch
    with ``epoch``, ``train/<task>/<name>``, ``val/<task>/<name>``).
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not histories:
        raise ValueError(f"No training history of task {task} to plot; train at least one fold first.")
    figure = _figure(10, 4)
    axes = figure.subplots(1, 2)
    folds = sorted(histories)
    for ax, name in zip(axes, ("loss", metric)):
        for position, fold in enumerate(folds):
            for split, style in (("train", "-"), ("val", "--")):
                key = f"{split}/{task}/{name}"
                points = [(record["epoch"] + 1, record[key]) for record in histories[fold] if key in record]
                if not points:
                    logger.warning("Fold %s recorded no %s; its curve is missing.", fold, key)
                    continue
                epochs, values = zip(*points)
                # markers keep short runs (a single epoch included) visible
                ax.plot(
                    epochs,
                    values,
                    linestyle=style,
                    color=_fold_colour(position),
                    marker="o" if len(points) <= 20 else None,
                    markersize=3,
                )
        ax.set(xlabel="epoch", ylabel=_label(name), title=f"{_label(name)} (train and val)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=_fold_colour(p), label=f"fold {f}") for p, f in enumerate(folds)]
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label="train"),
        Line2D([], [], color="0.3", linestyle="--", label="val"),
    ]
    figure.legend(handles=handles, loc="outside right upper")
    figure.suptitle(f"{task}: learning curves of {len(folds)} fold{'s' if len(folds) > 1 else ''}")
    _save(figure, out)
    return figure


def confusion_matrix(
    targets: Sequence[int] | np.ndarray,
    predicted: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    out: Path,
    title: str,
) -> Figure:
    """Confusion matrix normalised by true class (each row sums to 1); cells show the fraction
    and, below it, the count, so rare confusions stay readable. Empty cells stay blank."""
    import numpy as np
    from sklearn.metrics import ConfusionMatrixDisplay
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    labels = list(range(len(class_names)))
    counts = sk_confusion_matrix(targets, predicted, labels=labels)
    fractions = sk_confusion_matrix(targets, predicted, labels=labels, normalize="true")
    n = len(class_names)
    side = min(3.5 + 0.5 * n, 14)
    figure = _figure(side + 1.2, side)
    ax = figure.subplots()
    display = ConfusionMatrixDisplay(fractions, display_labels=list(class_names))
    display.plot(
        ax=ax,
        cmap="Blues",
        include_values=n <= MAX_ANNOTATED_CLASSES,
        colorbar=True,
        xticks_rotation="vertical" if max(len(str(name)) for name in class_names) > 3 else "horizontal",
        im_kw={"vmin": 0.0, "vmax": 1.0},
        text_kw={"fontsize": 8 if n > 6 else 10},
    )
    if display.text_ is not None:
        for (i, j), text in np.ndenumerate(display.text_):
            text.set_text(f"{fractions[i, j]:.2f}\n{counts[i, j]}" if counts[i, j] else "")
    display.im_.colorbar.set_label("fraction of the true class")
    ax.set_title(title)
    _save(figure, out)
    return figure


def fold_metric_dots(task_metrics: Mapping[str, Mapping[str, Mapping[str, Any]]], out: Path) -> Figure:
    """One panel per metric: a dot per fold for each task (one colour per fold), a box over the folds
    where there are three or more, the mean as a black line; ``mean ± std`` under each task's name.

    The axes do not zoom: scores (all values within [0, 1]) get the whole range 0..1 and other
    metrics start at 0, so a one-point dip looks like one. ``task_metrics`` is the summary's
    ``tasks`` (task -> metric -> ``{"folds", "mean", "std"}``).
    """
    from matplotlib.lines import Line2D

    from mml_core.results.tables import format_mean_std

    metrics = metric_columns(task_metrics)
    columns = min(max(len(metrics), 1), 3)
    rows = max(math.ceil(len(metrics) / columns), 1)
    figure = _figure(3.6 * columns + 1.4, 3.4 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    if not metrics:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, "no per-task metrics in the summary", ha="center", va="center")
    tasks = list(task_metrics)
    n_folds = 0
    for ax, metric in zip(axes, metrics):
        shown, labels = [], []
        for group, task in enumerate(tasks):
            agg = task_metrics[task].get(metric)
            if agg is None:
                labels.append(task)
                continue
            folds = [v for v in agg["folds"] if math.isfinite(v)]
            n_folds = max(n_folds, len(agg["folds"]))
            if len(folds) >= 3:
                ax.boxplot(folds, positions=[group], widths=0.5, showfliers=False, medianprops={"color": "0.5"},
                           boxprops={"color": "0.6"}, whiskerprops={"color": "0.6"}, capprops={"color": "0.6"})
            offsets = [0.0] if len(agg["folds"]) == 1 else [-0.2 + 0.4 * i / (len(agg["folds"]) - 1)
                                                            for i in range(len(agg["folds"]))]
            for position, (value, offset) in enumerate(zip(agg["folds"], offsets)):
                ax.plot(group + offset, value, "o", color=_fold_colour(position), markersize=6, zorder=3)
            ax.plot([group - 0.3, group + 0.3], [agg["mean"], agg["mean"]], color="black", linewidth=1.5, zorder=4)
            shown += folds
            labels.append(f"{task}\n{format_mean_std(agg['mean'], agg['std'])}")
        low, high = (min(shown), max(shown)) if shown else (0.0, 1.0)
        if 0.0 <= low and high <= 1.0:
            ax.set_ylim(0.0, 1.0)
        elif low >= 0:
            ax.set_ylim(0.0, high * 1.1 or 1.0)
        ax.set_xticks(range(len(tasks)), labels, rotation=20 if len(tasks) > 2 else 0)
        ax.set_xlim(-0.6, len(tasks) - 0.4)
        ax.set(ylabel=_label(metric), title=_label(metric))
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[max(len(metrics), 1):]:
        ax.remove()
    handles = [Line2D([], [], marker="o", linestyle="", color=_fold_colour(p), label=f"fold {p}") for p in range(n_folds)]
    handles.append(Line2D([], [], color="black", label="mean"))
    if metrics:
        figure.legend(handles=handles, loc="outside right upper")
        figure.suptitle(f"Per-fold metrics of {len(tasks)} task{'s' if len(tasks) > 1 else ''}")
    _save(figure, out)
    return figure
