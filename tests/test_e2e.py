"""End-to-end runs of the real Snakefile with snakemake in temporary directories."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, copy_workdir, run_snakemake

pytestmark = pytest.mark.e2e


def job_counts(output: str) -> dict[str, int]:
    """The first 'Job stats' table of a snakemake run: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_default_experiment_trains_tests_and_then_has_nothing_to_do(tmp_path, demo_data):
    run_snakemake(tmp_path, "--cores", "2", configfiles=(), config=[f"data_dir={demo_data}"])
    summary = read_json(tmp_path / "results/default/summary.json")
    acc = summary["tasks"]["sk_digits"]["acc"]
    assert len(acc["folds"]) == 5 and acc["mean"] >= 0.90, acc
    assert summary["return_value"] == pytest.approx(summary["monitored"]["mean"])
    again = run_snakemake(tmp_path, "--cores", "2", configfiles=(), config=[f"data_dir={demo_data}"])
    assert "Nothing to be done" in again.stdout + again.stderr


def test_quick_run_writes_demo_data_step_files_and_logs(finished_quick, tmp_path):
    workdir = copy_workdir(finished_quick, tmp_path / "work")
    assert (workdir / "data/RAW/DSET_sklearn_digits/TASK_sk_digits.json").is_file()
    root = workdir / "results/quick"
    train = read_json(root / "steps/train_fold--sk_digits_0/metrics.json")
    assert train["command"] == "train_fold" and train["params"] == ["sk_digits", 0]
    assert set(train["provenance"]["versions"]) >= {"torch", "pytorch-lightning", "snakemake"}
    assert train["provenance"]["wall_time_s"] > 0 and train["config_hash"]
    assert (root / "steps/train_fold--sk_digits_0/model.pt").is_file()
    assert (root / "checkpoints/train_fold--sk_digits_0/last.ckpt").is_file()
    from mml_core.results.predictions import read_predictions

    preds = read_predictions(root / "steps/predict_fold--sk_digits_0_None/predictions.npz")
    assert preds["test"]["logits"].shape == (360, 10) and len(preds["test"]["sample_ids"]) == 360
    predicted_acc = (preds["test"]["logits"].argmax(1) == preds["test"]["targets"]).mean()
    log = (root / "logs/train_fold--sk_digits_0.log").read_text()
    assert "epoch 1/1 done" in log and "Step train_fold--sk_digits_0 finished" in log
    summary = read_json(root / "summary.json")
    assert set(summary["tasks"]["sk_digits"]) >= {"acc", "balanced_acc", "f1", "auroc"}
    # predict_fold and test_task evaluate the same model on the same split
    assert summary["tasks"]["sk_digits"]["acc"]["mean"] == pytest.approx(predicted_acc, abs=1e-6)
    for name in ("summary.csv", "summary.md", "plots/fold_metrics.png", "plots/learning_curves/sk_digits.png",
                 "plots/confusion_matrix/sk_digits.png"):
        assert (root / name).stat().st_size > 0, name
    assert summary["steps"][0] == "prepare_exp" and summary["steps"][-1] == "finish_exp"

    # a key only training reads reruns training and what depends on it, not the preparation
    dry = run_snakemake(workdir, "-n", config=["trainer={max_epochs: 2}"])
    assert job_counts(dry.stdout) == {"train_fold": 1, "predict_fold": 1, "test_task": 1, "finish_exp": 1, "all": 1}
    assert "reason: Params have changed since last execution" in dry.stdout
    # a key only the test step reads reruns only test and finish
    dry = run_snakemake(workdir, "-n", config=["metrics={bootstrap: 5}"])
    assert job_counts(dry.stdout) == {"test_task": 1, "finish_exp": 1, "all": 1}
    # a task added to task_list re-prepares, but no finished training reruns
    dry = run_snakemake(workdir, "-n", config=["task_list=[sk_digits, sk_digits_parity]"])
    assert job_counts(dry.stdout) == {"prepare_exp": 1, "finish_exp": 1, "all": 1}
    # the job script or library code changing (a git checkout) does not retrain a finished study
    os.utime(REPO / "mml_core/schedulers/training.py")
    assert "Nothing to be done" in run_snakemake(workdir, "-n").stdout


def test_every_job_reads_the_config_that_planning_validated(finished_quick):
    from omegaconf import OmegaConf

    from mml_core.config import load_config

    root = finished_quick / "results/quick"
    files = {read_json(path)["config"] for path in root.glob("steps/*/metrics.json")}
    assert len(files) == 1, files
    planned = load_config(configfiles=[REPO / "config" / "quick.yaml"])
    assert read_json(finished_quick / files.pop()) == OmegaConf.to_container(planned)


def test_report_collects_the_summary_table_and_every_plot(finished_quick, tmp_path):
    workdir = copy_workdir(finished_quick, tmp_path / "work")
    run_snakemake(workdir, "--report", "report.html")
    html = (workdir / "report.html").read_text()
    assert len(html) > 100_000  # self-contained: the images are embedded
    for name in ("summary.md", "summary.csv", "fold_metrics.png", "learning curves", "confusion matrices"):
        assert name.lower() in html.lower(), name
    assert html.count("sk_digits.png") >= 2  # a learning-curve and a confusion-matrix plot of the task
    assert "(paste)" in html  # the label of the Markdown table


def test_dry_run_lists_every_step_without_importing_torch(tmp_path):
    blocker = tmp_path / "block"
    for name in ("torch", "pytorch_lightning", "lightning", "torchmetrics"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} must not be imported while planning')\n")
    work = tmp_path / "work"
    work.mkdir()
    dry = run_snakemake(work, "-n", configfiles=(), env={"PYTHONPATH": str(blocker)})
    assert job_counts(dry.stdout) == {
        "demo_tasks": 1, "data_fingerprint": 1, "prepare_exp": 1, "train_fold": 5, "predict_fold": 5, "test_task": 1,
        "finish_exp": 1, "all": 1,
    }
    for fold in range(5):
        assert f"results/default/steps/train_fold--sk_digits_{fold}/metrics.json" in dry.stdout
        assert f"results/default/steps/predict_fold--sk_digits_{fold}_None/metrics.json" in dry.stdout
    assert not (work / "results").exists() and not (work / "data").exists()


# Jobs run with the interpreter of snakemake itself (mml_core installed beside it; environment.yml
# documents the software), so a conda env or container per rule would only mislead.
ACCEPTED_LINTS = {"Specify a conda environment or container for each rule."}


def test_workflow_passes_snakemake_lint(tmp_path):
    lint = run_snakemake(tmp_path, "--lint", configfiles=(), check=False)
    output = lint.stdout + lint.stderr
    linted = set(re.findall(r"^Lints for rule (\w+)", output, re.MULTILINE))
    assert linted == {
        "demo_tasks", "data_fingerprint", "prepare_exp", "train_fold", "predict_fold", "test_task", "finish_exp",
    }, output  # fmt: skip
    lints = set(re.findall(r"^    \* (.+?):?$", output, re.MULTILINE))
    assert lints == ACCEPTED_LINTS, output


CUSTOM = textwrap.dedent(
    '''
    from mml_core.schedulers import AbstractBaseScheduler


    class OrderScheduler(AbstractBaseScheduler):
        def __init__(self, cfg):
            super().__init__(cfg, available_subroutines=["my"])

        def create_routine(self):
            if "my" in self.subroutines:
                for task in self.cfg.task_list:
                    self.commands.append(self.my_step)
                    self.params.append([task])

        def my_step(self, task):
            with open("order.txt", "a") as fh:
                fh.write(task + "\\n")
            self.step_results["struct_classes"] = self.get_struct(task).num_classes

        def before_finishing_hook(self):
            self.return_value = float(len(open("order.txt").read().split()))
    '''
)


def test_custom_seed_style_scheduler_runs_through_snakemake_in_schedule_order(tmp_path, demo_data):
    (tmp_path / "my_schedulers.py").write_text(CUSTOM)
    tasks = ["sk_digits_low", "sk_digits", "sk_digits_parity"]
    config = [
        f"data_dir={demo_data}",
        f"task_list=[{', '.join(tasks)}]",
        "pivot={name: null}",
        "mode={scheduler: my_schedulers:OrderScheduler, subroutines: [my]}",
    ]
    run_snakemake(tmp_path, "--cores", "2", config=config)
    assert (tmp_path / "order.txt").read_text().split() == tasks
    summary = read_json(tmp_path / "results/quick/summary.json")
    assert summary["return_value"] == 3.0 and summary["scheduler"] == "OrderScheduler"
    step = read_json(tmp_path / "results/quick/steps/my_step--sk_digits/metrics.json")
    assert step["results"]["struct_classes"] == 10


def test_scheduler_run_from_python_returns_return_value(tmp_path, demo_data, monkeypatch):
    from mml_core.config import load_config
    from mml_core.schedulers import TrainingScheduler

    monkeypatch.chdir(tmp_path)
    cfg = load_config({"data_dir": str(demo_data), "mode": {"subroutines": ["train"]}},
                      configfiles=[REPO / "config" / "quick.yaml"])
    value = TrainingScheduler(cfg).run(cores=2)
    summary = read_json(tmp_path / "results/quick/summary.json")
    train = read_json(tmp_path / "results/quick/steps/train_fold--sk_digits_0/metrics.json")
    assert isinstance(value, float) and value == summary["return_value"] == train["results"]["monitored"]
    assert summary["steps"] == ["prepare_exp", "train_fold--sk_digits_0", "finish_exp"]
    # the same pipeline as the command line: a rerun through snakemake has nothing to do
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", config=[f"data_dir={demo_data}",
                                                                       "mode={subroutines: [train]}"]).stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer={max_epoch: 3}", "Unknown config key 'trainer.max_epoch'"),
        ("trainer={max_epochs: lots}", "'trainer.max_epochs' must be integer"),
        ("pivot={name: mnist}", "Unknown task 'mnist'"),
        ("mode={subroutines: [train, fly]}", r"Unknown subroutine\(s\) \['fly'\]"),
    ],
)
def test_bad_config_stops_planning_with_one_clear_message(tmp_path, override, message):
    proc = run_snakemake(tmp_path, "-n", config=[override], check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert re.search(message, output), output[-2000:]
    assert "Traceback" not in output
