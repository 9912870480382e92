"""A segmentation study killed in the middle of a training epoch: the plain rerun resumes it and ends
with the summary of an uninterrupted run (long suite: pytest -m resilience)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time

import pytest
from test_resilience import SLOW, metrics, start, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.resilience]

CONFIG = textwrap.dedent(
    """
    proj: resil
    task_list: [shapes_seg]
    pivot: {name: shapes_seg}
    mode: {cv: false}
    arch: {arch: unet, encoder: resnet18}
    loss: {seg: {_target_: mml_core.models.losses.DiceCELoss}}
    sampling: {batch_size: 8}
    augmentations:
      cpu:
        backend: albumentations
        pipeline: [{name: HorizontalFlip, p: 0.5}, {name: Affine, rotate: [-20, 20], p: 0.7}]
    trainer: {max_epochs: 3, limit_train_batches: 6, limit_val_batches: 2, limit_test_batches: 2}
    cbs:
      slow: {_target_: slow_batches.SlowBatches, seconds: 0.15}
    """
)
TRAIN = "train_fold--shapes_seg_0"


def workdir_in(path):
    path.mkdir(parents=True, exist_ok=True)
    (path / "resil.yaml").write_text(CONFIG)
    (path / "slow_batches.py").write_text(SLOW)
    return path


def summary(workdir) -> dict:
    return json.loads((workdir / "results/resil/summary.json").read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_data) -> dict:
    workdir = workdir_in(tmp_path_factory.mktemp("reference"))
    assert start(workdir, demo_data).wait(timeout=600) == 0, (workdir / "snakemake.out").read_text()[-3000:]
    return summary(workdir)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_segmentation_killed_mid_epoch_resumes_to_the_same_summary(tmp_path, demo_data, reference, signum):
    workdir = workdir_in(tmp_path)
    log = workdir / f"results/resil/logs/{TRAIN}.log"
    proc = start(workdir, demo_data)
    wait_until(lambda: log.is_file() and "epoch 1/3 done" in log.read_text())
    time.sleep(0.4)  # into the second epoch
    os.killpg(proc.pid, signum)
    assert proc.wait(timeout=180) != 0 and not metrics(workdir, TRAIN).exists()
    assert start(workdir, demo_data).wait(timeout=600) == 0, (workdir / "snakemake.out").read_text()[-3000:]
    train = json.loads(metrics(workdir, TRAIN).read_text())["results"]
    assert train["resumed_from"] and [r["epoch"] for r in train["history"]] == [0, 1, 2]
    result = summary(workdir)
    assert result["tasks"] == reference["tasks"] and result["return_value"] == reference["return_value"]
    assert {"dice", "iou", "dice_triangle"} <= set(result["tasks"]["shapes_seg"])
