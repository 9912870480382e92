"""Extending a finished training (mode.extend): a higher trainer.max_epochs continues from the checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mml_core.config import config_hash
from mml_core.schedulers.provenance import CHECKPOINT_CLAIM, StepIdentity, claim_checkpoints, extension_key
from test_cli import run_cli

STEP = "train_fold--sk_digits_0"


def settings(demo_data: Path, proj: str, epochs: int) -> list[str]:
    return [f"proj={proj}", f"data_dir={demo_data}", "mode.subroutines=[train]", "mode.cv=false", "mode.extend=true",
            f"trainer.max_epochs={epochs}", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
            "arch.drop_rate=0.3"]


def trained(workdir: Path, proj: str) -> tuple[dict[str, torch.Tensor], dict]:
    root = workdir / "results" / proj / "steps" / STEP
    return torch.load(root / "model.pt", weights_only=True)["state_dict"], json.loads((root / "metrics.json").read_text())


@pytest.mark.e2e
def test_more_epochs_continue_the_finished_training_and_equal_training_that_long(tmp_path, demo_data):
    run_cli(tmp_path, *settings(demo_data, "extended", 2), "--cores", "1")
    run_cli(tmp_path, *settings(demo_data, "extended", 4), "--cores", "1")
    run_cli(tmp_path, *settings(demo_data, "scratch", 4), "--cores", "1")
    log = (tmp_path / "results/extended/logs" / f"{STEP}.log").read_text()
    assert f"Extending {STEP} from max_epochs=2 to 4 (mode.extend)" in log
    assert "Training continues at epoch 3 of 4." in log and "epoch 1/4 done" not in log
    extended, record = trained(tmp_path, "extended")
    scratch, reference = trained(tmp_path, "scratch")
    assert record["results"]["resumed_from"].endswith("last.ckpt") and record["results"]["epochs"] == 4
    assert extended.keys() == scratch.keys()
    assert all(torch.equal(extended[k], scratch[k]) for k in scratch), "extended weights differ"
    history = [(r["epoch"], r["val/sk_digits/loss"]) for r in record["results"]["history"]]
    assert history == [(r["epoch"], r["val/sk_digits/loss"]) for r in reference["results"]["history"]]
    assert [epoch for epoch, _ in history] == [0, 1, 2, 3]
    assert not list((tmp_path / "results/extended/checkpoints").glob("*.stale-*"))


def identity(epochs: int, lr: float = 0.003) -> StepIdentity:
    slice_ = {"trainer": {"max_epochs": epochs, "accelerator": "cpu"}, "optimizer": {"lr": lr}}
    return StepIdentity(STEP, "train_fold", ["sk_digits", 0], "method: train_fold / ['sk_digits', 0]",
                        config_hash(slice_), *extension_key(slice_))


@pytest.mark.parametrize(
    ("later", "extend", "kept"),
    [
        (identity(4), True, True),
        (identity(2), True, True),  # the same config: nothing to decide
        (identity(4), False, False),  # mode.extend off: a changed config starts over
        (identity(1), True, False),  # fewer epochs: the checkpoints went further already
        (identity(4, lr=0.1), True, False),  # anything else changed: starts over
    ],
    ids=["more-epochs", "same", "extend-off", "fewer-epochs", "other-key"],
)
def test_only_a_higher_max_epochs_keeps_the_checkpoints(tmp_path, later, extend, kept):
    directory = tmp_path / "checkpoints" / STEP
    directory.mkdir(parents=True)
    claim_checkpoints(directory, identity(2))
    (directory / "last.ckpt").write_text("epoch 2")
    claim_checkpoints(directory, later, extend=extend)
    assert (directory / "last.ckpt").is_file() == kept
    assert len(list(directory.parent.glob(f"{STEP}.stale-*"))) == (0 if kept else 1)
    assert json.loads((directory / CHECKPOINT_CLAIM).read_text())["max_epochs"] == later.max_epochs
