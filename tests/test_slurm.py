"""The pipeline on a real one-node SLURM cluster (.ci/slurm-cluster.sh) through the slurm profile.

Run alone with ``pytest -m slurm``. The module starts the cluster when it is not running (root
needed; otherwise the tests are skipped) and stops it again afterwards, so that no
/etc/slurm/slurm.conf is left behind to slow every later snakemake start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import conftest
import pytest
from conftest import REPO, run_snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster", "bounded")]
logger = logging.getLogger(__name__)

CLUSTER = REPO / ".ci" / "slurm-cluster.sh"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
# the repository's profile, plus what the test cluster needs: it has no accounting database
# (squeue instead of sacct), and its jobs take seconds, so the first status check comes early
SLURM_ARGS = (
    "--profile",
    str(REPO / "workflow" / "profiles" / "slurm"),
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
)
# a hung snakemake ignores SIGTERM but stops on SIGINT (cancelling its SLURM jobs)
RUN_LIMIT_S = 420


def cluster(command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLUSTER), command], check=False, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[None]:
    """A running local cluster; started (and stopped afterwards) here when it is not up yet."""
    if cluster("status").returncode == 0:
        yield
        return
    if os.geteuid() != 0:
        pytest.skip(f"the local SLURM cluster needs root to start: sudo {CLUSTER} start")
    started = time.monotonic()
    # installing slurm-wlm and munge with apt-get takes a minute on a fresh machine
    proc = cluster("start", timeout=900)
    assert proc.returncode == 0, f"{CLUSTER} start failed:\n{proc.stdout}{proc.stderr}"
    logger.info("SLURM cluster started in %.1f s", time.monotonic() - started)
    try:
        yield
    finally:
        proc = cluster("stop")
        assert proc.returncode == 0, proc.stderr
        assert not SLURM_CONF.exists(), f"{SLURM_CONF} left behind: every snakemake start would wait for it"


@pytest.fixture
def bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run_snakemake call of the test runs under ``timeout -s INT``."""
    wrapper = tmp_path / "snakemake-bounded"
    wrapper.write_text(f'#!/bin/sh\nexec timeout -s INT -k 30 {RUN_LIMIT_S} "{conftest.SNAKEMAKE}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(conftest, "SNAKEMAKE", wrapper)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def metric_keys(summary: dict) -> dict[str, dict[str, list[str]]]:
    """task -> metric -> the statistics recorded (folds, mean, std)."""
    return {
        task: {m: sorted(stats) for m, stats in metrics.items()} for task, metrics in summary["tasks"].items()
    }


def metric_means(summary: dict) -> dict[str, float]:
    """``task/metric`` -> mean over folds."""
    return {
        f"{task}/{m}": stats["mean"]
        for task, metrics in summary["tasks"].items()
        for m, stats in metrics.items()
    }


def test_slurm_run_has_the_steps_metrics_and_values_of_a_local_run(tmp_path, demo_data, finished_quick):
    # the same experiment as the local run (config/quick.yaml); train_fold asks for a GPU, and
    # the cluster has a fake one (GPU resources change no result)
    config = [f"data_dir={demo_data}", "resources={train_fold: {gpu: 1}}"]
    started = time.monotonic()
    proc = run_snakemake(tmp_path, *SLURM_ARGS, config=config)
    logger.info("SLURM run took %.1f s", time.monotonic() - started)

    output = proc.stdout + proc.stderr
    # the rule is part of the job's SLURM log path: .../slurm_logs/rule_<rule>/...
    on_slurm = set(re.findall(r"has been submitted with SLURM jobid \d+ \(log: \S*/rule_(\w+)/", output))
    assert on_slurm >= {"prepare_exp", "train_fold", "predict_fold", "test_task"}, output[-3000:]
    ours = read_json(tmp_path / "results/quick/summary.json")
    theirs = read_json(finished_quick / "results/quick/summary.json")
    assert ours["steps"] == theirs["steps"] and len(ours["steps"]) == 5
    assert metric_keys(ours) == metric_keys(theirs)
    assert set(metric_keys(ours)["sk_digits"]) >= {"acc", "auroc"}
    # same seed, deterministic CPU training, one thread: the numbers agree as well
    assert metric_means(ours) == pytest.approx(metric_means(theirs), rel=1e-5)
    assert ours["return_value"] == pytest.approx(theirs["return_value"], rel=1e-5)
    steps = tmp_path / "results/quick/steps"
    # SLURM handed the training job the GPU it asked for (--gpus=1); the prediction asked for none
    assert read_json(steps / "train_fold--sk_digits_0/metrics.json")["provenance"]["gpus"] == ["0"]
    assert read_json(steps / "predict_fold--sk_digits_0_None/metrics.json")["provenance"]["gpus"] == []


def slurm_jobs(rule: str) -> list[str]:
    """Ids of the queued or running SLURM jobs of ``rule`` (the plugin puts the rule in the comment)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %k"], capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if f"rule_{rule}" in line]


def test_training_job_cancelled_by_slurm_is_retried_and_resumes_from_its_checkpoint(tmp_path, demo_data):
    epochs = 10
    config = [f"data_dir={demo_data}", f"trainer={{max_epochs: {epochs}, limit_train_batches: 10}}"]
    target = "results/quick/steps/train_fold--sk_digits_0/metrics.json"
    checkpoint = tmp_path / "results/quick/checkpoints/train_fold--sk_digits_0/last.ckpt"
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(run_snakemake, tmp_path, *SLURM_ARGS, target, config=config)
        deadline = time.monotonic() + 240
        while not checkpoint.exists():
            if run.done():
                run.result()  # a failed run raises here, with snakemake's output
                pytest.fail("snakemake finished before the training job wrote a checkpoint")
            assert time.monotonic() < deadline, "the training job wrote no checkpoint within 240 s"
            time.sleep(0.2)
        cancelled = slurm_jobs("train_fold")
        assert len(cancelled) == 1, cancelled
        # what a time limit does as well: SIGTERM to the job's processes, then SIGKILL
        subprocess.run(["scancel", cancelled[0]], check=True)
        proc = run.result()

    output = proc.stdout + proc.stderr
    cancellation = f"SLURM-job '{cancelled[0]}' failed, SLURM status is: 'CANCELLED'"
    assert cancellation in output and "Trying to restart job" in output, output[-3000:]
    results = read_json(tmp_path / target)["results"]
    # the epoch checkpoint, or the one the step saved on SIGTERM
    assert results["resumed_from"] and Path(results["resumed_from"]).name in ("last.ckpt", "interrupted.ckpt")
    # one history entry per epoch: the epochs before the cancellation were kept, none repeated
    assert [record["epoch"] for record in results["history"]] == list(range(epochs))
    # the step log is the retry's (Snakemake clears a failed job's log): it went on from the checkpoint
    log = (tmp_path / "results/quick/logs/train_fold--sk_digits_0.log").read_text()
    assert "Resuming training from checkpoint" in log
    assert int(re.search(r"epoch (\d+)/\d+ done", log)[1]) > 1


def test_mml_snake_runs_on_slurm_with_the_config_it_composed(tmp_path, demo_data):
    # the composed config lies in results/<proj>/configs/ (a file system the nodes share), where the
    # SLURM jobs' snakemake reads it again; the same command then has nothing to do
    from test_cli import MML_SNAKE

    args = ["train", "proj=cli", f"data_dir={demo_data}", "mode.nested=false", "mode.cv=false",
            "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
            "augmentations=none", *SLURM_ARGS]

    def run(*extra: str) -> str:
        proc = subprocess.run(["timeout", "-s", "INT", "-k", "30", str(RUN_LIMIT_S), str(MML_SNAKE), *args, *extra],
                              cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    output = run()
    assert re.search(r"has been submitted with SLURM jobid \d+ \(log: \S*/rule_train_fold/", output), output[-3000:]
    assert read_json(tmp_path / "results/cli/steps/train_fold--sk_digits_0/metrics.json")["results"]["epochs"] == 1
    assert "Nothing to be done" in run("-n")
