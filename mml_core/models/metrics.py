"""Metrics per task type, as torchmetrics objects: MML's metric groups plus what papers report.

Every phase logs the cheap set of the task's type each epoch; testing adds the rest:

- classification (``metrics/cls``): accuracy, balanced accuracy, macro F1, macro AUROC; test adds
  average precision, Matthews correlation, macro precision and recall, calibration error;
- multi-label (``metrics/mlcls``): macro AUROC and F1 (threshold 0.5); test adds MML's average
  precision, ranking average precision and coverage error, and AUROC and F1 per label;
- regression (``metrics/reg``): MAE, MSE, R², Pearson's r; test adds MML's Spearman correlation;
- segmentation (``metrics/seg``): Dice (= F1 of the pixels) and IoU per class, pixels of all images
  pooled, averaged over the classes (background included, as MML's macro Dice); test adds them per
  class. Pixels marked 255 count for nothing.

Per-class test metrics are named ``<metric>_<class>`` (:func:`metric_label`) and computed in one go
at the end of testing (:func:`classwise_test_metrics`); only scalar metrics are bootstrapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MulticlassJaccardIndex,
    MulticlassMatthewsCorrCoef,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAUROC,
    MultilabelAveragePrecision,
    MultilabelCoverageError,
    MultilabelF1Score,
    MultilabelRankingAveragePrecision,
)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, PearsonCorrCoef, R2Score, SpearmanCorrCoef
from torchmetrics.wrappers import BootStrapper, ClasswiseWrapper

from mml_core.tasks.types import CLASSIFICATION, IGNORE_INDEX, MULTILABEL, REGRESSION, SEGMENTATION, TaskSpec


def classification_metrics(num_classes: int) -> MetricCollection:
    """Accuracy, balanced accuracy (macro recall), macro F1 and macro AUROC: cheap enough for every epoch."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes=num_classes, average="micro"),
            "balanced_acc": MulticlassAccuracy(num_classes=num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes=num_classes, average="macro"),
            "auroc": MulticlassAUROC(num_classes=num_classes, average="macro"),
        }
    )


def _classification_test(n: int) -> dict[str, Metric]:
    return {
        "average_precision": MulticlassAveragePrecision(num_classes=n, average="macro"),
        "mcc": MulticlassMatthewsCorrCoef(num_classes=n),
        "precision": MulticlassPrecision(num_classes=n, average="macro"),
        "recall": MulticlassRecall(num_classes=n, average="macro"),
        "calibration_error": MulticlassCalibrationError(num_classes=n, n_bins=15, norm="l1"),
    }


def _multilabel(n: int) -> dict[str, Metric]:
    return {"auroc": MultilabelAUROC(num_labels=n, average="macro"), "f1": MultilabelF1Score(num_labels=n, average="macro")}


def _multilabel_test(n: int) -> dict[str, Metric]:
    return {
        "average_precision": MultilabelAveragePrecision(num_labels=n, average="macro"),
        "ranking_ap": MultilabelRankingAveragePrecision(num_labels=n),
        "coverage_error": MultilabelCoverageError(num_labels=n),
    }


def _regression(n: int) -> dict[str, Metric]:
    return {"mae": MeanAbsoluteError(), "mse": MeanSquaredError(), "r2": R2Score(), "pearson": PearsonCorrCoef()}


def _segmentation(n: int) -> dict[str, Metric]:
    return {
        "dice": MulticlassF1Score(num_classes=n, average="macro", ignore_index=IGNORE_INDEX),
        "iou": MulticlassJaccardIndex(num_classes=n, average="macro", ignore_index=IGNORE_INDEX),
    }


def _per_class(kind: type[Metric], **kwargs: object) -> Callable[[int], Metric]:
    return lambda n: kind(average=None, **kwargs, **{"num_labels" if "Multilabel" in kind.__name__ else "num_classes": n})


# type -> (per-epoch metrics, further test metrics, per-class test metrics), each built from the class count
_METRICS: dict[str, tuple[Callable[[int], dict[str, Metric]], Callable[[int], dict[str, Metric]], dict]] = {
    CLASSIFICATION: (lambda n: dict(classification_metrics(n).items(keep_base=True)), _classification_test, {}),
    MULTILABEL: (_multilabel, _multilabel_test, {"auroc": _per_class(MultilabelAUROC), "f1": _per_class(MultilabelF1Score)}),
    REGRESSION: (_regression, lambda n: {"spearman": SpearmanCorrCoef()}, {}),
    SEGMENTATION: (_segmentation, lambda n: {}, {
        "dice": _per_class(MulticlassF1Score, ignore_index=IGNORE_INDEX),
        "iou": _per_class(MulticlassJaccardIndex, ignore_index=IGNORE_INDEX),
    }),
}  # fmt: skip


def epoch_metrics(task: TaskSpec) -> MetricCollection:
    """The metrics every phase logs each epoch for ``task``."""
    return MetricCollection(_METRICS[task.task_type][0](len(task.classes)))


def _test_factories(task: TaskSpec) -> dict[str, Metric]:
    every, extra, _ = _METRICS[task.task_type]
    n = len(task.classes)
    return {**every(n), **extra(n)}


def test_metrics(task: TaskSpec) -> MetricCollection:
    """The scalar test metrics of ``task``: the per-epoch set plus the type's further ones."""
    return MetricCollection(_test_factories(task))


def metric_label(name: str) -> str:
    """A class name as part of a metric name (no ``/``, no spaces)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)) or "_"


def classwise_test_metrics(task: TaskSpec) -> MetricCollection:
    """The per-class test metrics of ``task``, named ``<metric>_<class>`` (empty for classification and regression)."""
    labels = [metric_label(c) for c in task.classes]
    if len(set(labels)) != len(labels):  # classes that differ only in characters a name cannot hold
        labels = [f"{label}{k}" for k, label in enumerate(labels)]
    n = len(task.classes)
    return MetricCollection(
        {
            f"{name}_per_class": ClasswiseWrapper(factory(n), labels=labels, prefix=f"{name}_")
            for name, factory in _METRICS[task.task_type][2].items()
        }
    )


def bootstrapped_test_metrics(task: TaskSpec, num_bootstraps: int) -> dict[str, BootStrapper]:
    """Each scalar test metric wrapped in torchmetrics' ``BootStrapper`` (mean and std over resamples)."""
    return {
        name: BootStrapper(metric, num_bootstraps=num_bootstraps, mean=True, std=True)
        for name, metric in _test_factories(task).items()
    }


def metric_inputs(task_type: str, outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(preds, target)`` as the type's metrics take them: multi-label targets as 0/1 (soft labels at
    0.5), regression values flat."""
    if task_type == MULTILABEL:
        return outputs, (targets > 0.5).long()
    if task_type == REGRESSION:
        return outputs.reshape(-1), targets.reshape(-1)
    return outputs, targets

