"""Models of an earlier project: MML's mode=tl (fine-tuning) and predict/test with reuse.models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import REPO, copy_workdir, run_snakemake
from mml_core.config import MisconfigurationError, load_config
from mml_core.schedulers import build_scheduler
from test_cli import run_cli
from test_e2e import job_counts

pytestmark = pytest.mark.e2e

QUICK = str(REPO / "config" / "quick.yaml")
SOURCE = "results/quick/steps/train_fold--sk_digits_0/model.pt"
# project quick trained sk_digits (fold 0); project ft fine-tunes its backbone on the parity task
TL = ["tl", "proj=ft", "task_list=[sk_digits,sk_digits_parity]", "pivot.name=sk_digits_parity",
      "mode.pretrain_task=sk_digits", "reuse.models=quick", "mode.nested=false", "mode.freeze=true",
      "--configfile", QUICK]


@pytest.fixture
def workdir(finished_quick, tmp_path) -> Path:
    return copy_workdir(finished_quick, tmp_path / "work")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_tl_fine_tunes_a_frozen_source_backbone_and_reruns_when_the_source_is_retrained(workdir):
    run_cli(workdir, *TL, "--cores", "2")
    source, tuned = weights(workdir / SOURCE), weights(workdir / "results/ft/steps/train_fold--sk_digits_parity_0/model.pt")
    backbone = [k for k in source if k.startswith("backbone.")]
    assert any("running_mean" in k for k in backbone)
    # frozen: every backbone tensor, BatchNorm statistics included, is the source model's
    assert all(torch.equal(source[k], tuned[k]) for k in backbone)
    assert tuned["heads.0.1.weight"].shape[0] == 2 and source["heads.0.1.weight"].shape[0] == 10
    record = json.loads((workdir / "results/ft/steps/train_fold--sk_digits_parity_0/metrics.json").read_text())
    assert record["results"]["pretrained_from"] == SOURCE
    log = (workdir / "results/ft/logs/train_fold--sk_digits_parity_0.log").read_text()
    assert "Froze the backbone" in log and f"Loaded the backbone of {SOURCE}" in log
    assert "Nothing to be done" in run_cli(workdir, *TL, "-n").stdout
    # retraining the source model (another epoch count) reruns the fine-tuning, and what depends on it
    run_snakemake(workdir, "--cores", "2", config=["trainer={max_epochs: 2}", "mode={subroutines: [train]}"])
    dry = run_cli(workdir, *TL, "-n").stdout
    assert f"reason: Updated input files: {SOURCE}" in dry
    assert job_counts(dry) == {"train_fold": 1, "finish_exp": 1, "all": 1}


def test_test_mode_evaluates_the_models_of_another_project(workdir):
    run_cli(workdir, "test", "proj=evaluated", "reuse.models=quick", "mode.nested=false", "--configfile", QUICK,
            "--cores", "2")
    summary = json.loads((workdir / "results/evaluated/summary.json").read_text())
    original = json.loads((workdir / "results/quick/summary.json").read_text())
    assert summary["steps"] == ["prepare_exp", "test_task--sk_digits_None", "finish_exp"]
    assert summary["tasks"]["sk_digits"]["acc"] == original["tasks"]["sk_digits"]["acc"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": {"pretrain_task": None}}, "mode=tl fine-tunes a model trained on mode.pretrain_task: set"),
        ({"reuse": {"models": None}}, "from the projects of reuse.models, which is empty"),
        ({"task_list": ["sk_digits_parity"]}, "mode.pretrain_task sk_digits is not in task_list ['sk_digits_parity']"),
        ({"reuse": {"models": "nowhere"}}, "reuse.models names project 'nowhere', but there is no results/nowhere here"),
        ({"mode": {"pretrain_task": "sk_digits_parity"}}, "No trained model of sk_digits_parity in the projects of"),
        ({"arch": {"name": "resnet18"}}, "has a small_cnn backbone, but this experiment builds arch.name=resnet18"),
        ({"mode": {"scheduler": "train", "subroutines": ["test"], "nested": True}},
         "no trained model of sk_digits_parity+nested?0 fold 0 is in the projects of reuse.models ['quick']"),
    ],
    ids=["no-pretrain-task", "no-reuse", "pretrain-task-not-listed", "unknown-project", "no-model", "other-arch",
         "no-nested-models"],
)
def test_bad_reuse_stops_while_planning_with_the_fix(workdir, monkeypatch, overrides, message):
    monkeypatch.chdir(workdir)
    base = {"proj": "ft", "task_list": ["sk_digits", "sk_digits_parity"], "pivot": {"name": "sk_digits_parity"},
            "reuse": {"models": "quick"}, "mode": {"scheduler": "tl", "pretrain_task": "sk_digits"}}
    merged = {**base, **{k: {**base[k], **v} if isinstance(v, dict) and k in base else v for k, v in overrides.items()}}
    with pytest.raises(MisconfigurationError) as error:
        build_scheduler(load_config(merged, configfiles=[QUICK]))
    assert message in str(error.value)
