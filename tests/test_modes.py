"""MML's training modes: plans per mode (snakemake -n), end-to-end runs, and the refusals with their reasons."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import run_snakemake
from mml_core.config import load_config
from mml_core.schedulers import MisconfigurationError, TrainingScheduler

TASKS = "task_list=[sk_digits, sk_digits_parity, sk_digits_low, sk_digits_shifted]"


def planned_steps(workdir: Path, data: Path, *config: str) -> list[str]:
    """Step names of a dry run, in the order snakemake lists the jobs."""
    dry = run_snakemake(workdir, "-n", config=[f"data_dir={data}", *config])
    return re.findall(r"output: results/quick/steps/([^/]+)/metrics\.json", dry.stdout)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            ["mode={nested: true, cv: true}"],
            [f"train_fold--sk_digits+nested?{k}_0" for k in range(5)]
            + [f"predict_fold--sk_digits+nested?{k}_0_{e}" for k in range(5) for e in ("None", "sk_digits")]
            + [f"test_task--sk_digits+nested?{k}_None" for k in range(5)],
        ),
        (
            [TASKS, "mode={multitask: 2, co_tasks: random}"],
            ["train_fold--sk_digits_0", "predict_fold--sk_digits_0_None", "test_task--sk_digits_None"],
        ),
        (
            [TASKS, "mode={eval_on: [sk_digits_shifted]}"],
            ["train_fold--sk_digits_0", "predict_fold--sk_digits_0_None", "predict_fold--sk_digits_0_sk_digits_shifted",
             "test_task--sk_digits_None", "test_task--sk_digits_sk_digits_shifted"],
        ),
        (
            ["pivot={name: sk_digits, tags: +shrink_train?200}"],
            ["train_fold--sk_digits+shrink_train?200_0", "predict_fold--sk_digits+shrink_train?200_0_None",
             "test_task--sk_digits+shrink_train?200_None"],
        ),
        (
            ["arch={name: resnet18}", "mode={cv: true, subroutines: [train, test]}"],
            [f"train_fold--sk_digits_{k}" for k in range(5)] + ["test_task--sk_digits_None"],
        ),
    ],
    ids=["nested", "multitask", "eval_on", "tagged", "resnet18-cv"],
)
def test_dry_run_lists_the_steps_of_each_mode(tmp_path, demo_data, config, expected):
    steps = planned_steps(tmp_path, demo_data, *config)
    assert sorted(steps) == sorted(["prepare_exp", *expected, "finish_exp"])


@pytest.mark.e2e
def test_multitask_with_random_co_task_eval_on_and_tagged_pivot(tmp_path, demo_data):
    run_snakemake(
        tmp_path, "--cores", "2",
        config=[f"data_dir={demo_data}", "task_list=[sk_digits_parity, sk_digits_low, sk_digits_shifted]",
                "pivot={name: sk_digits, tags: +shrink_train?200}",
                "mode={multitask: 2, co_tasks: random, task_weights: [1, 0.5], eval_on: [sk_digits_shifted]}",
                "metrics={bootstrap: 4}"],
    )  # fmt: skip
    root = tmp_path / "results/quick"
    pivot = "sk_digits+shrink_train?200"
    train = json.loads((root / f"steps/train_fold--{pivot}_0/metrics.json").read_text())["results"]
    co_task = train["tasks"][1]
    assert train["tasks"][0] == pivot and co_task in ("sk_digits_parity", "sk_digits_low", "sk_digits_shifted")
    assert f"val/{co_task}/loss" in train["history"][-1]  # the co-task was trained jointly
    summary = json.loads((root / "summary.json").read_text())
    assert set(summary["tasks"]) == {pivot, "sk_digits_shifted"}
    metrics = summary["tasks"][pivot]
    for name in ("acc", "f1", "auroc", "average_precision", "mcc", "precision", "recall", "calibration_error",
                 "acc_boot_mean", "acc_boot_std"):
        assert name in metrics, name
    shifted = json.loads((root / f"steps/predict_fold--{pivot}_0_sk_digits_shifted/metrics.json").read_text())
    assert shifted["results"]["evaluated"] == "sk_digits_shifted" and shifted["results"]["counts"]["test"] == 360


def mml_data_root(demo_data: Path, root: Path) -> Path:
    """An MML data root as `mml create` leaves it, with a task of its own name (no demo task involved)."""
    dataset = root / "RAW" / "DSET_handwriting"
    shutil.copytree(demo_data / "RAW" / "DSET_sklearn_digits" / "images", dataset / "images")
    data = json.loads((demo_data / "RAW" / "DSET_sklearn_digits" / "TASK_sk_digits.json").read_text())
    data["name"] = "handwriting"
    (dataset / "TASK_handwriting.json").write_bytes(json.dumps(data).encode())
    return root


@pytest.mark.e2e
def test_nested_cv_with_resnet18_on_an_mml_data_root(tmp_path, demo_data):
    data = mml_data_root(demo_data, tmp_path / "mml_data")
    run_snakemake(
        tmp_path, "--cores", "2",
        config=[f"data_dir={data}", "task_list=[handwriting]", "pivot={name: handwriting}", "arch={name: resnet18}",
                "mode={nested: true}"],
    )  # fmt: skip
    root = tmp_path / "results/quick"
    nested = "handwriting+nested?0"
    model = root / f"steps/train_fold--{nested}_0/model.pt"
    import torch

    state = torch.load(model)["state_dict"]
    assert any(k.startswith("backbone.layer4.") for k in state)  # the last residual stage of timm's resnet18
    held_out = json.loads((root / f"steps/predict_fold--{nested}_0_None/metrics.json").read_text())["results"]
    original = json.loads((root / f"steps/predict_fold--{nested}_0_handwriting/metrics.json").read_text())["results"]
    assert held_out["counts"]["test"] == 288  # fold 0 of the training samples is the nested test split
    assert original["counts"]["test"] == 360 and original["evaluated"] == "handwriting"
    summary = json.loads((root / "summary.json").read_text())
    assert list(summary["tasks"]) == ["handwriting"] and summary["tasks"]["handwriting"]["acc"]["folds"]
    assert not (data / "RAW" / "DSET_sklearn_digits").exists()  # no demo data written into the user's root


def training_cfg(demo_data, tmp_path, monkeypatch, **overrides):
    monkeypatch.chdir(tmp_path)
    return load_config({"data_dir": str(demo_data), "task_list": ["sk_digits", "sk_digits_parity",
                                                                   "sk_digits_low", "sk_digits_shifted"], **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lr_scheduler": {"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau"}},
         r"ReduceLROnPlateau reacts to the validation fold.*Set mode.nested=true"),
        ({"cbs": {"stop": {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "val/loss"}}},
         r"cbs.stop \(EarlyStopping on 'val/loss'\).*information leaks.*mode.nested=true"),
    ],
    ids=["reduce-lr-on-plateau", "early-stopping"],
)
def test_leakage_checks_refuse_val_steered_training_in_cv(demo_data, tmp_path, monkeypatch, overrides, message):
    with pytest.raises(MisconfigurationError, match=message):
        TrainingScheduler(training_cfg(demo_data, tmp_path, monkeypatch, **overrides))
    # nesting removes the leak; a monitor that ignores val is fine too
    TrainingScheduler(training_cfg(demo_data, tmp_path, monkeypatch, **overrides, mode={"nested": True}))
    TrainingScheduler(training_cfg(demo_data, tmp_path, monkeypatch, cbs={
        "stop": {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "train/loss"}}))


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ({"eval_on": ["sk_digits_parity"]}, r"eval_on task sk_digits_parity \(classification, 2 classes\) cannot"),
        ({"eval_on": ["mnist"]}, r"mode.eval_on \['mnist'\] are not in task_list"),
        ({"multitask": 1}, "TOTAL number of tasks"),
        ({"multitask": 9}, r"needs 8 co-task\(s\) besides the pivot, but task_list offers 3"),
        ({"multitask": 2, "co_tasks": ["sk_digits+identity"]}, r"co_tasks \['sk_digits\+identity'\] are not in"),
        ({"multitask": 3, "co_tasks": ["sk_digits_low"]}, "lists 1 task.* asks for 2"),
        ({"multitask": 2, "co_tasks": ["sk_digits_low"], "task_weights": [1.0]}, "has 1 weight.* for 2 task"),
        ({"store_parameters": False}, "predict or test, which load the stored weights"),
    ],
)
def test_mode_misconfigurations_name_the_problem_and_the_fix(demo_data, tmp_path, monkeypatch, mode, message):
    with pytest.raises(MisconfigurationError, match=message):
        TrainingScheduler(training_cfg(demo_data, tmp_path, monkeypatch, mode=mode))


def test_random_co_tasks_are_the_same_in_every_job(demo_data, tmp_path, monkeypatch):
    draws = {tuple(TrainingScheduler(training_cfg(demo_data, tmp_path, monkeypatch, mode={"multitask": 3})).co_tasks)
             for _ in range(3)}
    assert len(draws) == 1 and len(next(iter(draws))) == 2
    seeds = {tuple(TrainingScheduler(training_cfg(demo_data, tmp_path, monkeypatch, seed=s,
                                                  mode={"multitask": 2})).co_tasks) for s in range(6)}
    assert len(seeds) > 1  # the draw follows the experiment seed
