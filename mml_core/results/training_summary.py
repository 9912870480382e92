"""The summary of a training experiment, from what its steps recorded.

Each trained model is described by a :class:`ModelRef`: the task and fold it was trained on and
where its results count (nested CV trains ``pivot+nested?k`` on fold 0 and reports it as the
pivot's outer fold k). The scheduler creates these records while it builds the schedule; the
summary only reads them, so no identity is parsed back out of a name.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mml_core.results import outputs
from mml_core.results.keys import metric_key, split_metric_key
from mml_core.results.summary import aggregate, aggregate_folds


History = list[dict[str, float]]


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """One model of a training schedule and where its results are reported."""

    task: str
    fold: int
    reported_task: str
    reported_fold: int


def reported_history(history: Sequence[Mapping[str, float]], model: ModelRef) -> History:
    """``history`` with the model's own task in its metric names replaced by the reported task."""
    renamed = []
    for record in history:
        entry = {}
        for key, value in record.items():
            parts = split_metric_key(key)
            if parts and parts[1] == model.task:
                key = metric_key(parts[0], model.reported_task, parts[2])
            entry[key] = value
        renamed.append(entry)
    return renamed


def _metrics_of(record: Mapping[str, float], phase: str, task: str) -> dict[str, float]:
    found = {}
    for key, value in record.items():
        parts = split_metric_key(key)
        if parts and parts[0] == phase and parts[1] == task:
            found[parts[2]] = value
    return found


@dataclasses.dataclass
class TrainingSummary:
    """What ``finish_exp`` reports: per-task metric aggregates, the monitored loss, learning curves."""

    tasks: dict[str, dict[str, dict[str, Any]]]
    monitored: dict[str, Any] | None
    histories: dict[str, dict[int, History]]
    # the mean monitored validation loss over the trained models (MML's return value)
    return_value: float | None


def summarize_training(
    pivot: str,
    trained: Sequence[tuple[ModelRef, Mapping[str, Any]]],
    tested: Sequence[tuple[str | None, Mapping[ModelRef, Mapping[str, float]]]],
) -> TrainingSummary:
    """Test metrics per evaluated task over the reported folds, else the last validation metrics.

    :param pivot: the pivot task (validation metrics are reported under it)
    :param trained: each trained model with the results its ``train_fold`` step recorded
    :param tested: per ``test_task`` step the evaluated task (None: the model's own) and the
        test metrics of each model
    """
    monitored, val_per_fold, histories = [], {}, {}
    for model, results in trained:
        monitored.append(results["monitored"])
        history = results["history"]
        histories.setdefault(model.reported_task, {})[model.reported_fold] = reported_history(history, model)
        val_per_fold[model.reported_fold] = _metrics_of(history[-1], "val", model.task) if history else {}
    per_task: dict[str, dict[int, Mapping[str, float]]] = {}
    for evaluated, per_model in tested:
        for model, values in per_model.items():
            per_task.setdefault(evaluated or model.reported_task, {})[model.reported_fold] = values
    tasks = {task: aggregate_folds(folds) for task, folds in per_task.items()}
    if not tasks and val_per_fold:
        tasks[pivot] = aggregate_folds(val_per_fold)
    watched = {"metric": metric_key("val", pivot, "loss"), **aggregate(monitored)} if monitored else None
    return_value = statistics.fmean(monitored) if monitored else None
    return TrainingSummary(tasks=tasks, monitored=watched, histories=histories, return_value=return_value)


def plot_training(
    results_dir: Path,
    histories: Mapping[str, Mapping[int, History]],
    predictions: Mapping[str, Mapping[int, Path]],
    class_names: Mapping[str, Sequence[str]],
    task_types: Mapping[str, str],
) -> None:
    """Learning curves per trained task; per predicted task (``{fold: predictions file}``) the plot of
    its type's test predictions, models pooled (:mod:`mml_core.results.type_plots`: a confusion matrix,
    per-label ROC curves, truth against prediction, segmentation overlays) and for classification
    ROC and PR curves, a reliability diagram and per-class metrics."""
    from mml_core.results.plots import learning_curves
    from mml_core.results.report.classification import classification_report
    from mml_core.results.type_plots import CURVE_METRIC, plot_test_predictions

    for task, per_fold in histories.items():
        out = outputs.task_plot(results_dir, outputs.LEARNING_CURVES_DIR, task)
        learning_curves(per_fold, task, out, metric=CURVE_METRIC[task_types[task]])
    for task, by_fold in predictions.items():
        plotted = plot_test_predictions(results_dir, task, task_types[task], list(by_fold.values()), class_names[task])
        if plotted is not None and task_types[task] == "classification":
            classification_report(results_dir, task, by_fold, class_names[task])
