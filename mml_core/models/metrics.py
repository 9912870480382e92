"""Classification metrics per task, as torchmetrics collections (MML's set for testing)."""

from __future__ import annotations

from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassAveragePrecision,
    MulticlassCalibrationError,
    MulticlassF1Score,
    MulticlassMatthewsCorrCoef,
    MulticlassPrecision,
    MulticlassRecall,
)
from torchmetrics.wrappers import BootStrapper


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


def _test_metric_factories(num_classes: int) -> dict[str, Metric]:
    return {
        **dict(classification_metrics(num_classes).items(keep_base=True)),
        "average_precision": MulticlassAveragePrecision(num_classes=num_classes, average="macro"),
        "mcc": MulticlassMatthewsCorrCoef(num_classes=num_classes),
        "precision": MulticlassPrecision(num_classes=num_classes, average="macro"),
        "recall": MulticlassRecall(num_classes=num_classes, average="macro"),
        "calibration_error": MulticlassCalibrationError(num_classes=num_classes, n_bins=15, norm="l1"),
    }


def test_metrics(num_classes: int) -> MetricCollection:
    """The test metrics of MML's classification tasks: the per-epoch set plus average precision,
    Matthews correlation, macro precision and recall, and the expected calibration error."""
    return MetricCollection(_test_metric_factories(num_classes))


def bootstrapped_test_metrics(num_classes: int, num_bootstraps: int) -> dict[str, BootStrapper]:
    """Each test metric wrapped in torchmetrics' ``BootStrapper`` (mean and std over resamples)."""
    return {
        name: BootStrapper(metric, num_bootstraps=num_bootstraps, mean=True, std=True)
        for name, metric in _test_metric_factories(num_classes).items()
    }
