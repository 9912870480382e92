"""``snakemake --report`` of a finished run, opened and parsed as a reader's browser would see it."""

from __future__ import annotations

import base64
import json
import re
from io import BytesIO
from typing import Any

import pytest
import yaml
from PIL import Image

from conftest import Tables, copy_workdir, run_snakemake

pytestmark = pytest.mark.e2e


def embedded(report: str, script: str, name: str) -> Any:
    """The JSON value the report's ``<script id="<script>">`` block assigns to ``var <name>``."""
    found = re.search(rf'<script id="{script}">\s*var {name} = (.*?);\n\s*</script>', report, re.S)
    assert found, name
    return json.loads(found[1])


def decode(data_uri: str) -> bytes:
    return base64.b64decode(data_uri.split("base64,", 1)[1])


@pytest.fixture(scope="module")
def report(finished_quick, tmp_path_factory) -> tuple[str, dict]:
    """The first page's HTML and the report's results (path -> entry with the file as a data URI)."""
    workdir = copy_workdir(finished_quick, tmp_path_factory.mktemp("report") / "work")
    run_snakemake(workdir, "--report", "report.html")
    text = (workdir / "report.html").read_text()
    assert len(text) > 100_000  # self-contained: every file is embedded
    return embedded(text, "workflow-desc", "workflow_desc"), embedded(text, "results", "results")


def test_first_page_describes_the_run_and_shows_the_summary_as_a_table(report, finished_quick):
    description, _ = report
    summary = json.loads((finished_quick / "results/quick/summary.json").read_text())
    page = Tables(description)
    assert "mml_core experiment quick" in description
    assert "TrainingScheduler ran 5 steps (1 × prepare_exp, 1 × train_fold, 1 × predict_fold, 1 × test_task" in description
    table = {row[0]: row[1:] for row in page.tables[0]}
    assert table["metric"] == ["sk_digits (1 fold)"]
    acc = summary["tasks"]["sk_digits"]["acc"]
    assert table["acc"] == [f"{acc['mean']:.4f} ± {acc['std']:.4f}"]
    assert set(table) >= {"balanced_acc", "f1", "auroc", "loss"}
    # what the run changed against the default experiment, and the code version
    assert page.pre[0].splitlines() == ["proj=quick", "mode.cv=false", "trainer.max_epochs=1",
                                        "trainer.limit_train_batches=5", "trainer.limit_val_batches=2"]
    assert "Code: mml_core 0.1.0" in description


def test_report_holds_tables_curves_and_the_config(report, finished_quick):
    _, results = report
    by_name = {path.split("results/quick/", 1)[1]: entry for path, entry in results.items()}
    assert set(by_name) >= {
        "summary.md", "summary.csv", "report/summary.html", "report/run.html", "plots/fold_metrics.png",
        "plots/learning_curves/sk_digits.png", "plots/confusion_matrix/sk_digits.png", "plots/roc_pr/sk_digits.png",
        "plots/calibration/sk_digits.png", "tables/per_class/sk_digits.html",
    }
    # the summary as an HTML table (shown in the report's frame), tasks by metrics
    summary = Tables(decode(by_name["report/summary.html"]["data_uri"]).decode())
    header, row = summary.tables[0]
    assert header[:4] == ["task", "folds", "acc", "balanced_acc"] and row[:2] == ["sk_digits", "1"]
    # ROC and PR curves are images of the task
    for plot in ("plots/roc_pr/sk_digits.png", "plots/calibration/sk_digits.png"):
        assert by_name[plot]["mime_type"] == "image/png"
        assert Image.open(BytesIO(decode(by_name[plot]["data_uri"]))).size[0] >= 600
    # per-class precision, recall, F1: one row per digit
    per_class = Tables(decode(by_name["tables/per_class/sk_digits.html"]["data_uri"]).decode()).tables[0]
    assert per_class[0][:3] == ["class", "support", "precision (folds)"] and len(per_class) == 11
    assert sum(int(row[1]) for row in per_class[1:]) == 360
    # the run: the resolved config (as saved beside the results), its overrides, the code and the steps
    run = Tables(decode(by_name["report/run.html"]["data_uri"]).decode())
    config = yaml.safe_load(run.pre[1])
    assert config == yaml.safe_load((finished_quick / "results/quick/config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 1 and config["proj"] == "quick"
    code = {row[0]: row[1] for row in run.tables[0][1:]}
    assert code["mml_core"] == "0.1.0"
    assert re.fullmatch(r"[0-9a-f]{40} \((clean|uncommitted changes)\)|not a git checkout", code["git commit"])
    assert [row[0] for row in run.tables[1][1:]] == ["prepare_exp", "train_fold--sk_digits_0",
                                                     "predict_fold--sk_digits_0_None", "test_task--sk_digits_None"]
