"""Sweeps killed with SIGKILL and rerun with the same command (long suite: pytest -m resilience).

A 2x2 grid killed while one trial trains (others trained): finished steps are not redone, the
killed training resumes from its checkpoint, the summary equals an uninterrupted sweep's. An Optuna
study of 6 trials in batches of 2, killed twice at random moments: exactly 6 complete trials, no
duplicates, the best reported; raising hpo.trials to 8 runs exactly 2 more.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import REPO, SNAKEMAKE
from test_resilience import SLOW, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.resilience]
logger = logging.getLogger(__name__)

# slow batches make epochs long enough to be killed in the middle (they change no number)
COMMON = textwrap.dedent(
    """
    mode: {cv: false, subroutines: [train]}
    trainer: {max_epochs: 3, limit_train_batches: 6, limit_val_batches: 2}
    cbs:
      slow: {_target_: slow_batches.SlowBatches, seconds: 0.15}
    """
)
GRID = COMMON + textwrap.dedent(
    """
    proj: grid
    search_space: {optimizer.lr: [0.01, 0.001], sampling.batch_size: [16, 32]}
    hpo: {sampler: grid}
    """
)
STUDY = COMMON + textwrap.dedent(
    """
    proj: study
    search_space:
      optimizer.lr: tag(log, interval(0.0001, 0.05))
    hpo: {sampler: tpe, trials: 6, n_jobs: 2}
    """
)
TRAIN = "steps/train_fold--sk_digits_0"


def prepare(workdir: Path, text: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "sweep.yaml").write_text(text)
    (workdir / "slow_batches.py").write_text(SLOW)
    return workdir


def start(workdir: Path, data: Path, *config: str) -> subprocess.Popen:
    """The user's command, in its own session so that the test can signal the whole group."""
    log = open(workdir / "snakemake.out", "a")
    return subprocess.Popen(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--cores", "2", "--configfile", "sweep.yaml",
         "--config", f"data_dir={data}", *config],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def finish(workdir: Path, data: Path, *config: str) -> None:
    proc = start(workdir, data, *config)
    assert proc.wait(timeout=900) == 0, (workdir / "snakemake.out").read_text()[-4000:]


def kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def rows(workdir: Path, proj: str) -> dict[str, tuple]:
    summary = json.loads((workdir / f"results/{proj}/sweep.json").read_text())
    return {r["trial"]: (r["params"], r["return_value"], r["status"]) for r in summary["trials"]}


def trial_dirs(workdir: Path, proj: str) -> list[Path]:
    return sorted((workdir / f"results/{proj}/trials").iterdir())


def in_second_epoch(log: Path) -> bool:
    text = log.read_text() if log.is_file() else ""
    return "epoch 1/3 done" in text and "epoch 2/3 done" not in text


def test_grid_killed_while_a_trial_trains_resumes_it_and_redoes_no_finished_trial(tmp_path, demo_data):
    reference = prepare(tmp_path / "reference", GRID)
    finish(reference, demo_data)
    workdir = prepare(tmp_path / "killed", GRID)
    proc = start(workdir, demo_data)

    def one_trained_and_one_mid_epoch():
        assert proc.poll() is None, "the sweep finished before a trial was caught mid-epoch"
        trials = trial_dirs(workdir, "grid") if (workdir / "results/grid/trials").is_dir() else []
        done = [t for t in trials if (t / TRAIN / "metrics.json").is_file()]
        training = [t for t in trials if in_second_epoch(t / "logs/train_fold--sk_digits_0.log")]
        return (done, training) if done and training else None

    done, training = wait_until(one_trained_and_one_mid_epoch, timeout=300, poll=0.05)
    time.sleep(0.3)  # into the second epoch
    kill(proc)
    finished = {
        t.name: (t / TRAIN / "metrics.json").stat().st_mtime_ns
        for t in trial_dirs(workdir, "grid") if (t / TRAIN / "metrics.json").is_file()
    }  # fmt: skip
    killed = [t for t in training if not (t / TRAIN / "metrics.json").exists()]
    assert killed, "the training trial finished before the kill"

    finish(workdir, demo_data)
    for name, mtime in finished.items():
        assert (
            workdir / "results/grid/trials" / name / TRAIN / "metrics.json"
        ).stat().st_mtime_ns == mtime, name
    for trial in killed:
        results = json.loads((trial / TRAIN / "metrics.json").read_text())["results"]
        assert results["resumed_from"] and results["resumed_from"].endswith("last.ckpt"), trial.name
        assert [r["epoch"] for r in results["history"]] == [0, 1, 2]
    assert rows(workdir, "grid") == rows(reference, "grid")


def study_trials(workdir: Path):
    import optuna

    from mml_core.sweeps.study import open_storage

    storage = open_storage(str(workdir / "results/study/sweep/study.journal"), create=False)
    return optuna.load_study(study_name="study", storage=storage).trials


def test_study_killed_twice_at_random_moments_ends_with_exactly_its_trials(tmp_path, demo_data):
    workdir = prepare(tmp_path / "study", STUDY)
    draw = random.Random()
    for attempt in range(2):
        delay = draw.uniform(3, 25)
        logger.info("kill %d after %.1f s", attempt + 1, delay)
        proc = start(workdir, demo_data)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            kill(proc)
    finish(workdir, demo_data)

    trials = study_trials(workdir)
    assert [t.number for t in trials] == list(range(6))
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert [t.user_attrs["mml_batch"] for t in trials] == [0, 0, 1, 1, 2, 2]
    assert len({t.params["optimizer.lr"] for t in trials}) == 6  # no trial asked twice
    assert [d.name for d in trial_dirs(workdir, "study")] == [f"trial-{n:03d}" for n in range(6)]
    summary = json.loads((workdir / "results/study/sweep.json").read_text())
    best = min(trials, key=lambda t: t.value)
    assert summary["best"]["number"] == best.number and summary["best"]["return_value"] == best.value
    for trial in trials:
        recorded = json.loads(
            (workdir / f"results/study/trials/trial-{trial.number:03d}/summary.json").read_text()
        )
        assert recorded["return_value"] == trial.value

    trained = {d.name: (d / TRAIN / "metrics.json").stat().st_mtime_ns for d in trial_dirs(workdir, "study")}
    finish(workdir, demo_data, "hpo={trials: 8}")
    trials = study_trials(workdir)
    assert [t.number for t in trials] == list(range(8)) and all(t.state.name == "COMPLETE" for t in trials)
    for name, mtime in trained.items():
        assert (
            workdir / "results/study/trials" / name / TRAIN / "metrics.json"
        ).stat().st_mtime_ns == mtime, name
    assert json.loads((workdir / "results/study/sweep.json").read_text())["trials_total"] == 8
