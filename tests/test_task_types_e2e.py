"""Every MML task type end to end through snakemake: the example experiment of each type on its demo task,
with tiny settings; metrics, predictions, plots, the step records listing them, and the report. The
segmentation run trains a multi-label co-task on the same network, as MML lets an smp model mix those
types; the regression run goes through mml-snake (the same experiment file, MML's override grammar)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO, run_snakemake
from test_cli import run_cli

pytestmark = pytest.mark.e2e

TINY = "trainer={max_epochs: 1, limit_train_batches: 3, limit_val_batches: 2}"
TINY_MML = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2"]
UNIT = (0.0, 1.0)
MIXED = [
    "task_list=[shapes_seg, sk_digits_multilabel]",
    "mode={multitask: 2, co_tasks: [sk_digits_multilabel]}",
    # the 16x16 digit grids reach the U-Net at 32x32, as the shapes
    "preprocessing={id: size32, pipeline: [{name: Resize, height: 32, width: 32}]}",
]
# experiment file -> task, metric ranges, prediction field and test shape, plot folder and report label
CASES = {
    "multilabel": (
        "sk_digits_multilabel",
        {"auroc": UNIT, "f1": UNIT, "average_precision": UNIT, "ranking_ap": UNIT, "coverage_error": (1.0, 10.0),
         "auroc_0": UNIT, "auroc_9": UNIT, "f1_0": UNIT, "f1_9": UNIT},
        "logits", (200, 10), "roc_curves", "ROC curves per label",
    ),
    "regression": (
        "shapes_area",
        {"mae": (0.0, 10.0), "mse": (0.0, 100.0), "r2": (-1e6, 1.0), "pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)},
        "values", (64,), "regression_scatter", "Regression: truth vs prediction",
    ),
    "segmentation": (
        "shapes_seg",
        {"dice": UNIT, "iou": UNIT, "dice_background": UNIT, "dice_disc": UNIT, "dice_square": UNIT,
         "dice_triangle": UNIT, "iou_background": UNIT, "iou_triangle": UNIT},
        "masks", (64, 32, 32), "segmentation_overlays", "Segmentation overlays",
    ),
}  # fmt: skip


@pytest.mark.parametrize("experiment", CASES)
def test_example_experiment_of_each_type_trains_predicts_tests_and_reports(tmp_path, demo_data, experiment):
    task, ranges, field, shape, plots, label = CASES[experiment]
    configfiles = (REPO / "config" / f"{experiment}.yaml",)
    config = [f"data_dir={demo_data}", TINY, *(MIXED if experiment == "segmentation" else [])]
    if experiment == "regression":
        run_cli(tmp_path, "--configfile", str(*configfiles), f"data_dir={demo_data}", *TINY_MML, "--cores", "2")
    else:
        run_snakemake(tmp_path, "--cores", "2", configfiles=configfiles, config=config)
    root = tmp_path / "results" / experiment
    summary = json.loads((root / "summary.json").read_text())["tasks"][task]
    assert set(ranges) | {"loss"} <= set(summary), sorted(summary)
    for metric, (low, high) in ranges.items():
        assert low <= summary[metric]["mean"] <= high, (metric, summary[metric])
    from mml_core.results.predictions import read_predictions

    predictions = read_predictions(root / f"steps/predict_fold--{task}_0_None/predictions.npz")
    test = predictions["test"]
    assert test[field].shape == shape and test["targets"].shape[0] == shape[0] and len(test["sample_ids"]) == shape[0]
    if experiment == "segmentation":  # the predicted class of each pixel, never its logits
        assert test["masks"].dtype == np.uint8 and set(np.unique(test["masks"])) <= {0, 1, 2, 3}
        assert test["examples"].shape == (4, 32, 32, 3)
        trained = json.loads((root / f"steps/train_fold--{task}_0/metrics.json").read_text())["results"]
        assert trained["tasks"] == [task, "sk_digits_multilabel"]
        assert 0 <= trained["history"][-1]["val/sk_digits_multilabel/auroc"] <= 1
    # the step records list the type's outputs, so planning redoes a step whose predictions or plots are lost
    predicted = json.loads((root / f"steps/predict_fold--{task}_0_None/metrics.json").read_text())["files"]
    assert predicted[f"steps/predict_fold--{task}_0_None/predictions.npz"] > 0
    finished = json.loads((root / "steps/finish_exp/metrics.json").read_text())["files"]
    assert finished[f"plots/{plots}/{task}.png"] > 10_000 and f"plots/learning_curves/{task}.png" in finished
    if experiment == "segmentation":  # the data fingerprint covers every image and mask
        fingerprint = json.loads((root / f"fingerprints/{task}.json").read_text())
        assert fingerprint["files"] == 2 * 320
    csv = (root / "summary.csv").read_text()
    assert all(f"{task},{metric}," in csv for metric in ranges)
    assert (root / "plots" / plots / f"{task}.png").stat().st_size > 10_000
    assert (root / "plots/learning_curves" / f"{task}.png").is_file()
    run_snakemake(tmp_path, "--report", "report.html", configfiles=configfiles, config=config)
    html = (tmp_path / "report.html").read_text()
    assert label in html and html.count(f"{task}.png") >= 2  # its type's plot and its learning curves
