"""Curves and per-class tables of classification predictions, and the console's result lines."""

from __future__ import annotations

import numpy as np
import pytest

from mml_core.results import outputs
from mml_core.results.headlines import prediction_headline, evaluation_headline, training_headline
from mml_core.results.predictions import write_predictions
from mml_core.results.report import classification as curves
from mml_core.results.summary import aggregate


def scores(seed: int, n: int = 300, classes: int = 3, skill: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Targets and logits of a model that is right more often than chance."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), targets] += skill
    return targets, logits


def test_macro_curves_have_the_areas_of_sklearns_macro_scores():
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.preprocessing import label_binarize

    targets, logits = scores(0)
    probs = curves.softmax(logits)
    fpr, tpr, auc = curves.mean_roc(targets, logits)
    assert auc == pytest.approx(roc_auc_score(targets, probs, multi_class="ovr", average="macro"))
    assert tpr[0] == 0.0 and tpr[-1] == pytest.approx(1.0) and np.all(np.diff(tpr) >= -1e-12)
    # the curve's own area is close to the exact one (interpolated on 201 points)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=0.01)
    recall, precision, ap, prevalence = curves.mean_pr(targets, logits)
    assert ap == pytest.approx(average_precision_score(label_binarize(targets, classes=[0, 1, 2]), probs, average="macro"))
    assert np.all(np.diff(precision) <= 1e-12)  # interpolated precision never rises with recall
    assert prevalence == pytest.approx(1 / 3, abs=0.05)
    # two classes: the curve of the second class
    binary_targets, binary_logits = scores(1, classes=2)
    assert curves.mean_roc(binary_targets, binary_logits)[2] == pytest.approx(
        roc_auc_score(binary_targets, curves.softmax(binary_logits)[:, 1]))  # fmt: skip


def test_calibration_bins_and_expected_calibration_error():
    # four predictions: two confident and right, two unsure (one right)
    logits = np.log(np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.55, 0.45]]))
    binned = curves.calibration_bins(np.array([0, 0, 0, 1]), logits)
    assert binned["count"][9] == 2 and binned["count"][5] == 2 and binned["count"].sum() == 4
    assert binned["accuracy"][9] == 1.0 and binned["accuracy"][5] == 0.5
    assert float(binned["ece"]) == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)


def test_classification_report_writes_curves_and_per_class_tables(tmp_path):
    paths = {}
    for fold in range(3):
        targets, logits = scores(fold)
        split = {"logits": logits, "targets": targets, "sample_ids": [str(i) for i in range(len(targets))]}
        empty = {"logits": np.empty((0, 3)), "targets": [], "sample_ids": []}
        paths[fold] = write_predictions(tmp_path / f"p{fold}.npz", {"test": split, "val": empty, "unlabeled": empty})
    assert curves.classification_report(tmp_path, "t", paths, ["cat", "dog", "eel"])
    roc = curves.roc_pr_curves(curves.labelled_test_scores(paths), "t", tmp_path / "roc.png")
    labels = [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    assert [label.split(":")[0] for label in labels] == ["fold 0", "fold 1", "fold 2", "pooled (3 models)"]
    for folder in (outputs.ROC_PR_DIR, outputs.CALIBRATION_DIR):
        assert (tmp_path / folder / "t.png").stat().st_size > 10_000
    rows = curves.per_class_rows(curves.labelled_test_scores(paths), ["cat", "dog", "eel"])
    assert [row["class"] for row in rows] == ["cat", "dog", "eel"]
    assert sum(row["support"] for row in rows) == 300
    assert 0.5 < rows[0]["recall_mean"] <= 1.0 and rows[0]["recall_std"] > 0
    html = (tmp_path / outputs.PER_CLASS_DIR / "t.html").read_text()
    assert html.count("<tr>") == 4 and "recall (folds)" in html
    # a test split without labels has no curves
    unlabelled = {"logits": np.zeros((2, 3)), "targets": [-1, -1], "sample_ids": ["a", "b"]}
    path = write_predictions(tmp_path / "u.npz", {"test": unlabelled})
    assert not curves.classification_report(tmp_path, "u", {0: path}, ["cat", "dog", "eel"])


def test_result_lines_of_finished_steps():
    history = [{"epoch": 7, "val/t/loss": 0.08, "val/t/acc": 0.975}]
    assert training_headline({"tasks": ["t"], "epochs": 8, "monitored": 0.0812, "history": history}) == (
        "8 epochs · val loss 0.0812 · val accuracy 0.9750"
    )
    assert prediction_headline({"counts": {"test": 360, "val": 288, "unlabeled": 0}, "evaluated": "t"}) == (
        "360 test · 288 val predictions of t"
    )
    metrics = {"acc": aggregate([0.98, 0.99]), "auroc": aggregate([1.0, 0.999]), "loss": aggregate([0.1, 0.2])}
    assert evaluation_headline({"metrics": metrics, "per_fold": {"0": {}, "1": {}}}) == (
        "accuracy 0.9850 ± 0.0050 · AUROC 0.9995 ± 0.0005 (2 models)"
    )
    # the other task types show their own metrics
    regression = [{"epoch": 0, "val/r/loss": 0.3, "val/r/mae": 0.125}]
    assert training_headline({"tasks": ["r"], "epochs": 1, "history": regression}) == "1 epoch · val MAE 0.1250"
    metrics = {"dice": aggregate([0.8, 0.9]), "iou": aggregate([0.7, 0.8]), "loss": aggregate([0.3, 0.2])}
    assert evaluation_headline({"metrics": metrics, "per_fold": {"0": {}}}) == (
        "Dice 0.8500 ± 0.0500 · IoU 0.7500 ± 0.0500 (1 model)"
    )
