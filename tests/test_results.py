"""Results meant for people: summary tables, PNG plots, prediction pooling, report captions."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mml_core.results import outputs
from mml_core.results.plots import confusion_matrix, fold_metric_dots, learning_curves
from mml_core.results.report.pages import RunFacts
from mml_core.results.summary import aggregate
from mml_core.results.tables import format_mean_std, markdown_table, summary_rows, write_csv

TASK = "sk_digits"


@pytest.fixture
def summary() -> dict:
    """A summary as finish_exp writes it: two tasks with different metrics and fold counts."""
    return {
        "proj": "demo",
        "scheduler": "TrainingScheduler",
        "return_value": 0.1234567,
        "tasks": {
            "task_a": {
                "loss": aggregate([0.3, 0.2, 0.25]),
                "acc": aggregate([0.9, 0.95, 0.925]),
                "f1": aggregate([0.8812345678, 0.9, 0.91]),
            },
            "task_b": {"acc": aggregate([0.5, 0.6])},
        },
        "monitored": {"metric": "val/task_a/loss", **aggregate([0.1, 0.12, 0.15])},
        "steps": ["prepare_exp", "finish_exp"],
    }


def _history(epochs: int, offset: float, val_every: int = 1) -> list[dict[str, float]]:
    """A train_fold history: one record per epoch; val keys only every ``val_every`` epochs."""
    records = []
    for epoch in range(epochs):
        record = {
            "epoch": epoch,
            f"train/{TASK}/loss": 2.0 / (epoch + 1) + offset,
            f"train/{TASK}/acc": 0.5 + 0.1 * epoch,
        }
        if epoch % val_every == 0:
            record |= {f"val/{TASK}/loss": 2.2 / (epoch + 1) + offset, f"val/{TASK}/acc": 0.45 + 0.1 * epoch}
        records.append(record)
    return records


def _png_size(path: Path) -> tuple[int, int]:
    """Pixel size of a valid PNG (PIL's verify raises on a truncated or corrupt file)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        return image.size


# -- tables ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "std", "expected"),
    [
        (0.98277, 0.008498, "0.9828 ± 0.0085"),
        (0.99988, 0.0000788, "0.9999 ± 0.0001"),
        (123.456, 5.61, "123.5 ± 5.6"),
        (4567.8, 12.3, "4568 ± 12"),
        (0.0, 0.0, "0.000 ± 0.000"),
        (float("nan"), 0.0, "n/a"),
    ],
)
def test_format_mean_std_keeps_four_significant_digits(mean, std, expected):
    assert format_mean_std(mean, std) == expected


def test_csv_numbers_round_trip(summary, tmp_path):
    path = write_csv(summary, tmp_path / "summary.csv")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["task", "metric", "mean", "std", "fold_0", "fold_1", "fold_2"]
        rows = list(reader)
    # metrics in reading order (acc, f1, loss), tasks in summary order
    assert [(r["task"], r["metric"]) for r in rows] == [
        ("task_a", "acc"), ("task_a", "f1"), ("task_a", "loss"), ("task_b", "acc"),
    ]
    for row in rows:
        agg = summary["tasks"][row["task"]][row["metric"]]
        assert float(row["mean"]) == agg["mean"]
        assert float(row["std"]) == agg["std"]
        folds = [float(row[f"fold_{i}"]) for i in range(3) if row[f"fold_{i}"] != ""]
        assert folds == agg["folds"]
    assert rows[-1]["fold_2"] == ""  # task_b has two folds


def test_csv_of_summary_without_tasks_has_header_only(tmp_path):
    path = write_csv({"return_value": None, "tasks": {}}, tmp_path / "summary.csv")
    assert path.read_text() == "task,metric,mean,std\n"
    assert summary_rows({}) == []


def test_markdown_is_one_table_with_mean_std_cells(summary):
    text = markdown_table(summary)
    lines = text.splitlines()
    assert "| task | folds | acc | f1 | loss |" in lines
    assert "|---|---:|---:|---:|---:|" in lines
    assert "| task_a | 3 | 0.9250 ± 0.0204 | 0.8971 ± 0.0119 | 0.2500 ± 0.0408 |" in lines
    assert "| task_b | 2 | 0.5500 ± 0.0500 | – | – |" in lines
    assert lines[-1] == "return_value: 0.1235 (monitored val/task_a/loss: 0.1233 ± 0.0205 over 3 folds)"
    assert sum(line.startswith("| task") for line in lines) == 3  # header + two task rows


def test_summary_outputs_are_written_with_plot_folders(summary, tmp_path):
    facts = RunFacts(config={"proj": "demo", "task_list": ["task_a"]}, overrides=["proj=demo"],
                     versions={"mml_core": "0.1.0"}, code={"git_commit": None}, steps=[])
    written = outputs.write_summary_outputs(summary, tmp_path, facts)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        outputs.SUMMARY_CSV, outputs.SUMMARY_MD, outputs.FOLD_METRICS_PNG,
        outputs.SUMMARY_HTML, outputs.RUN_HTML, outputs.DESCRIPTION_RST,
    ]
    assert (tmp_path / outputs.SUMMARY_MD).read_text() == markdown_table(summary)
    assert _png_size(tmp_path / outputs.FOLD_METRICS_PNG)
    for reported in outputs.REPORTED.values():
        assert (tmp_path / reported.path).is_dir() == reported.is_dir
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "plots").glob(".*.tmp"))


# -- plots ----------------------------------------------------------------------------------------


def test_learning_curves_one_curve_per_fold_and_split(tmp_path):
    histories = {fold: _history(5, offset=0.1 * fold) for fold in range(3)}
    out = tmp_path / "lc.png"
    figure = learning_curves(histories, TASK, out)
    panels = [ax for ax in figure.axes if ax.lines]
    assert len(panels) == 2
    for ax, ylabel in zip(panels, ("loss", "accuracy")):
        assert ax.get_xlabel() == "epoch"
        assert ax.get_ylabel() == ylabel
        assert len(ax.lines) == 6  # 3 folds x (train, val)
        assert sorted(line.get_linestyle() for line in ax.lines) == ["-"] * 3 + ["--"] * 3
        assert len({line.get_color() for line in ax.lines}) == 3
        assert all(list(line.get_xdata()) == [1, 2, 3, 4, 5] for line in ax.lines)
    loss_of_fold_2_train = panels[0].lines[4]
    assert list(loss_of_fold_2_train.get_ydata()) == [r[f"train/{TASK}/loss"] for r in histories[2]]
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert labels == ["fold 0", "fold 1", "fold 2", "train", "val"]
    assert TASK in figure.get_suptitle()
    assert _png_size(out) == (1000, 400)
    assert out.stat().st_size < 200_000


def test_learning_curves_skip_epochs_without_validation(tmp_path):
    figure = learning_curves({0: _history(6, 0.0, val_every=2)}, TASK, tmp_path / "lc.png")
    train, val = figure.axes[0].lines
    assert list(train.get_xdata()) == [1, 2, 3, 4, 5, 6]
    assert list(val.get_xdata()) == [1, 3, 5]


def test_learning_curves_without_history_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="train at least one fold"):
        learning_curves({}, TASK, tmp_path / "lc.png")


def test_confusion_matrix_is_normalised_by_true_class(tmp_path):
    targets = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    predicted = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    out = tmp_path / "cm.png"
    figure = confusion_matrix(targets, predicted, ["cat", "dog", "bird", "fish"], out, title="test split")
    ax = figure.axes[0]
    matrix = np.asarray(ax.images[0].get_array())
    assert matrix.shape == (4, 4)
    np.testing.assert_allclose(matrix.sum(axis=1), [1, 1, 1, 0])  # fish never occurs: empty row
    np.testing.assert_allclose(matrix[0], [0.75, 0.25, 0, 0])
    texts = [t.get_text() for t in ax.texts]
    assert texts[:3] == ["0.75\n3", "0.25\n1", ""]  # fraction and count; zero cells blank
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted label", "True label")
    assert ax.get_title() == "test split"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "bird", "fish"]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    width, height = _png_size(out)
    assert width > height and out.stat().st_size < 200_000


def test_confusion_matrix_of_many_classes_drops_cell_values(tmp_path):
    classes = [f"c{i}" for i in range(25)]
    labels = np.arange(250) % 25
    figure = confusion_matrix(labels, labels, classes, tmp_path / "cm.png", title="many")
    assert len(figure.axes[0].texts) == 0
    assert np.asarray(figure.axes[0].images[0].get_array()).shape == (25, 25)
    assert (tmp_path / "cm.png").stat().st_size < 200_000


def test_fold_metric_dots_mark_every_fold_and_the_mean_on_honest_axes(summary, tmp_path):
    out = tmp_path / "dots.png"
    figure = fold_metric_dots(summary["tasks"], out)
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert list(panels) == ["accuracy", "F1", "loss"]
    acc = panels["accuracy"]
    dots = [line.get_ydata()[0] for line in acc.lines if line.get_marker() == "o"]
    assert dots == [0.9, 0.95, 0.925, 0.5, 0.6]
    means = [line.get_ydata()[0] for line in acc.lines if line.get_color() == "black"]
    assert means == pytest.approx([0.925, 0.55])
    # scores keep the whole range 0..1: a one-point dip is not drawn as a collapse
    assert acc.get_ylim() == (0.0, 1.0)
    assert panels["loss"].get_ylim()[0] == 0.0 and panels["loss"].get_ylim()[1] > 0.3
    # three folds get a box (box, two whiskers, two caps), two folds (task_b) only dots
    assert len([line for line in acc.lines if line.get_color() == "0.6"]) == 5
    labels = [t.get_text() for t in acc.get_xticklabels()]
    assert labels == ["task_a\n0.9250 ± 0.0204", "task_b\n0.5500 ± 0.0500"]
    assert acc.get_ylabel() == "accuracy"
    assert len([line for line in panels["loss"].lines if line.get_marker() == "o"]) == 3  # task_b has no loss
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["fold 0", "fold 1", "fold 2", "mean"]
    assert _png_size(out) and out.stat().st_size < 250_000


def test_fold_metric_dots_without_tasks_still_write_a_png(tmp_path):
    figure = fold_metric_dots({}, tmp_path / "dots.png")
    assert "no per-task metrics" in figure.axes[0].texts[0].get_text()
    assert _png_size(tmp_path / "dots.png")


def test_plots_are_deterministic(tmp_path):
    histories = {0: _history(3, 0.0)}
    learning_curves(histories, TASK, tmp_path / "a.png")
    learning_curves(histories, TASK, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


# -- predictions, captions, import cost -----------------------------------------------------------


def test_predictions_round_trip_and_pool_over_folds(tmp_path):
    from mml_core.results.predictions import pooled_predictions, read_predictions, write_predictions

    paths = []
    for fold, (logits, targets) in enumerate([([[2.0, 0.1], [0.1, 3.0]], [0, 0]), ([[0.0, 1.0]], [1])]):
        empty = {"logits": np.empty((0, 2)), "targets": [], "sample_ids": []}
        test = {"logits": logits, "targets": targets, "sample_ids": [f"s{i}" for i in range(len(targets))]}
        paths.append(write_predictions(tmp_path / f"p{fold}.npz", {"test": test, "val": test, "unlabeled": empty}))
    back = read_predictions(paths[0])
    assert set(back) == {"test", "val", "unlabeled"}
    assert back["test"]["logits"].dtype == np.float32 and back["test"]["sample_ids"].tolist() == ["s0", "s1"]
    targets, predicted = pooled_predictions(paths)
    assert targets.tolist() == [0, 0, 1] and predicted.tolist() == [0, 1, 1]
    assert [a.size for a in pooled_predictions(paths, split="unlabeled")] == [0, 0]
    with pytest.raises(KeyError, match="no split 'train'"):
        pooled_predictions(paths, split="train")


CAPTION_KINDS = sorted({reported.caption for reported in outputs.REPORTED.values()})


@pytest.mark.parametrize("kind", CAPTION_KINDS)
def test_captions_render_as_snakemake_does(kind):
    """Jinja with the job's wildcards, then reStructuredText with the report's link targets
    (Snakemake appends one per report file); any RST warning fails."""
    from docutils.core import publish_parts
    from jinja2 import Environment, StrictUndefined

    text = Path(outputs.caption(kind)).read_text()
    snakemake = SimpleNamespace(wildcards=SimpleNamespace(task="sk_digits"), config={"proj": "demo"})
    rst = Environment(undefined=StrictUndefined).from_string(text).render(snakemake=snakemake)
    rst += "\n\n.. _summary.csv: #summary\n.. _summary.md: #summary\n"
    html = publish_parts(rst, writer="html", settings_overrides={"halt_level": 2, "report_level": 5})["body"]
    assert "{{" not in html and len(html) > 100
    if "{task}" in outputs.REPORTED[kind].labels.values():
        assert "sk_digits" in html


def test_unknown_caption_lists_the_known_ones():
    with pytest.raises(FileNotFoundError, match="known: .*learning_curves"):
        outputs.caption("scatter")


def test_importing_results_loads_neither_matplotlib_nor_torch():
    code = (
        "import sys, mml_core.results.outputs, mml_core.results.plots, mml_core.results.tables, "
        "mml_core.results.predictions, mml_core.results.summary; "
        "print(sorted(m for m in ('matplotlib', 'torch', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
