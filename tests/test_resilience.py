"""Interrupt a real snakemake run at every stage with SIGKILL, SIGINT and SIGTERM; a plain rerun finishes it.

Each signal gets one chain in one working directory: interrupt while prepare_exp runs, rerun and
interrupt mid-epoch in training, rerun and interrupt predict, then test, then finish, then rerun
to completion. The signal goes to the whole process group, as Ctrl-C in a terminal, a SLURM
cancel or a killed session would deliver it. Each rerun is the same command. The final
summary must equal the one of an uninterrupted reference run, training must resume from a
checkpoint (not epoch 0), and finished steps must never run again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from conftest import REPO, SNAKEMAKE, copy_workdir

pytestmark = [pytest.mark.e2e, pytest.mark.resilience]

CONFIG = textwrap.dedent(
    """
    proj: resil
    mode: {cv: false}
    trainer: {max_epochs: 4, limit_train_batches: 6, limit_val_batches: 2}
    cbs:
      slow: {_target_: slow_batches.SlowBatches, seconds: 0.15}
    """
)
SLOW = textwrap.dedent(
    '''
    import time
    import pytorch_lightning as pl


    class SlowBatches(pl.Callback):
        """Makes epochs long enough to be interrupted in the middle (does not change the numbers)."""

        def __init__(self, seconds):
            self.seconds = seconds

        def on_train_batch_end(self, *args):
            time.sleep(self.seconds)
    '''
)
STEPS = ("prepare_exp", "train_fold--sk_digits_0", "predict_fold--sk_digits_0_None", "test_task--sk_digits_None",
         "finish_exp")


def prepare_workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "resil.yaml").write_text(CONFIG)
    (path / "slow_batches.py").write_text(SLOW)
    return path


def start(workdir: Path, data: Path) -> subprocess.Popen:
    """The user's command; its own session so the test can signal the whole group."""
    log = open(workdir / "snakemake.out", "a")
    return subprocess.Popen(
        [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--cores", "1", "--configfile", "resil.yaml",
         "--config", f"data_dir={data}"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # a process started from a script may inherit "ignore SIGINT": restore the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def job_of(step: str) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if "--step" in cmdline and cmdline[cmdline.index("--step") + 1] == step:
            return proc
    return None


def wait_until(condition, timeout: float = 180, poll: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {condition}")


def metrics(workdir: Path, step: str) -> Path:
    return workdir / "results/resil/steps" / step / "metrics.json"


def finished_mtimes(workdir: Path) -> dict[str, int]:
    return {s: metrics(workdir, s).stat().st_mtime_ns for s in STEPS if metrics(workdir, s).is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_data) -> dict:
    workdir = prepare_workdir(tmp_path_factory.mktemp("reference"))
    assert start(workdir, demo_data).wait(timeout=600) == 0, (workdir / "snakemake.out").read_text()[-3000:]
    return json.loads((workdir / "results/resil/summary.json").read_text())


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["KILL", "INT", "TERM"])
def test_interrupted_everywhere_then_plain_rerun_completes_identically(tmp_path, demo_data, reference, signum):
    workdir = prepare_workdir(tmp_path)
    train_log = workdir / "results/resil/logs/train_fold--sk_digits_0.log"

    def in_the_middle_of_training():
        return train_log.is_file() and "epoch 2/4 done" in train_log.read_text()

    points = [
        ("prepare_exp", lambda: job_of("prepare_exp")),
        ("train_fold--sk_digits_0", in_the_middle_of_training),
        ("predict_fold--sk_digits_0_None", lambda: job_of("predict_fold--sk_digits_0_None")),
        ("test_task--sk_digits_None", lambda: job_of("test_task--sk_digits_None")),
        ("finish_exp", lambda: job_of("finish_exp")),
    ]
    for step, reached in points:
        before = finished_mtimes(workdir)
        proc = start(workdir, demo_data)
        wait_until(reached)
        if step == "train_fold--sk_digits_0":
            time.sleep(0.3)  # into the third epoch
        os.killpg(proc.pid, signum)
        assert proc.wait(timeout=180) != 0, f"interrupted run at {step} reported success"
        assert not metrics(workdir, step).exists(), f"{step} finished although it was interrupted"
        after = finished_mtimes(workdir)
        for done, mtime in before.items():
            assert after[done] == mtime, f"{done} ran again after the interruption at {step}"
        if step == "train_fold--sk_digits_0" and signum != signal.SIGKILL:
            assert f"Stopped by {signal.Signals(signum).name}" in train_log.read_text()

    final = start(workdir, demo_data)
    assert final.wait(timeout=600) == 0, (workdir / "snakemake.out").read_text()[-3000:]
    train = json.loads(metrics(workdir, "train_fold--sk_digits_0").read_text())["results"]
    expected = "last.ckpt" if signum == signal.SIGKILL else "interrupted.ckpt"
    assert train["resumed_from"] and train["resumed_from"].endswith(expected), train["resumed_from"]
    assert [r["epoch"] for r in train["history"]] == [0, 1, 2, 3]
    summary = json.loads((workdir / "results/resil/summary.json").read_text())
    assert summary["tasks"] == reference["tasks"]
    assert summary["return_value"] == reference["return_value"]


# -- the working directory's lock and the first write of the demo data ----------------------------

QUICK = ["-s", str(REPO / "Snakefile"), "--configfile", str(REPO / "config/quick.yaml")]
HOLDER = Path(".snakemake/locks/mml_core-holder.json")


def start_quick(workdir: Path, *args: str, launcher: tuple[str, ...] = (str(SNAKEMAKE),)) -> subprocess.Popen:
    """The quick experiment in ``workdir`` in a session of its own (so the test can kill its group)."""
    return subprocess.Popen(
        [*launcher, *QUICK, "--cores", "1", *args], cwd=workdir, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def second_run(workdir: Path, *args: str) -> str:
    proc = subprocess.run([str(SNAKEMAKE), *QUICK, *args], cwd=workdir, capture_output=True, text=True, timeout=300)
    return f"rc={proc.returncode}\n{proc.stdout}{proc.stderr}"


API = (sys.executable, "-c", "import sys; from mml_core.jobs.workflow import run_snakemake; "
       "sys.exit(0 if run_snakemake(sys.argv[1:]) else 1)")  # fmt: skip
UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", str(SNAKEMAKE))


@pytest.mark.parametrize(
    ("launcher", "message"),
    [(API, "which is still running"), (UNSHARE, "which runs on another container or PID namespace of this host")],
    ids=["python-api", "other-pid-namespace"],
)
def test_a_live_run_keeps_its_lock(finished_quick, tmp_path, launcher, message):
    if launcher is UNSHARE and (os.geteuid() != 0 or not shutil.which("unshare")):
        pytest.skip("a PID namespace needs root and unshare")
    workdir = copy_workdir(finished_quick, tmp_path / "work")
    first = start_quick(workdir, "--forcerun", "test_task", launcher=launcher)
    try:
        wait_until(lambda: (workdir / HOLDER).is_file(), poll=0.05)
        locks = sorted(p.name for p in (workdir / HOLDER).parent.iterdir())
        for args in (("--cores", "2"), ("-n",)):
            output = second_run(workdir, *args)
            assert output.startswith("rc=1") and message in output, output[-3000:]
            assert first.poll() is None, "the first run ended before the second was refused: nothing was tested"
        assert sorted(p.name for p in (workdir / HOLDER).parent.iterdir()) == locks
    finally:
        assert first.wait(timeout=300) == 0


def test_the_lock_of_a_killed_run_is_removed_by_the_next_run(finished_quick, tmp_path):
    workdir = copy_workdir(finished_quick, tmp_path / "work")
    first = start_quick(workdir, "--forcerun", "train_fold")
    wait_until(lambda: (workdir / HOLDER).is_file(), poll=0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert (workdir / HOLDER).is_file()
    output = second_run(workdir, "-n")
    assert output.startswith("rc=1") and "which is not running any more (killed?). A dry run changes nothing" in output
    output = second_run(workdir, "--cores", "2")
    assert output.startswith("rc=0") and "Removed the stale lock of snakemake pid" in output, output[-3000:]
    assert not (workdir / HOLDER).parent.exists()


def test_a_kill_during_the_first_demo_data_write_is_repaired_by_a_plain_rerun(tmp_path):
    images = tmp_path / "data/RAW/DSET_sklearn_digits/images"
    first = start_quick(tmp_path)
    wait_until(lambda: images.is_dir() and len(list(images.iterdir())) > 200, poll=0.01)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert not list(images.parent.glob("TASK_*.json"))
    (images / "digit_0001.png").write_bytes(b"")  # what an earlier, non-atomic writer left behind
    output = second_run(tmp_path, "--cores", "2")
    assert output.startswith("rc=0"), output[-3000:]
    from PIL import Image

    with Image.open(images / "digit_0001.png") as img:
        assert img.size == (8, 8)
    assert len(list(images.glob("digit_*.png"))) == 1797


def test_a_lost_model_and_replaced_images_are_redone_by_a_plain_rerun(finished_quick, tmp_path):
    workdir = copy_workdir(finished_quick, tmp_path / "work")
    steps = workdir / "results/quick/steps"
    summary = (workdir / "results/quick/summary.json").read_bytes()

    def finished() -> dict[str, int]:
        return {p.parent.name: p.stat().st_mtime_ns for p in steps.glob("*/metrics.json") if ".broken-" not in str(p)}

    before = finished()
    (steps / "train_fold--sk_digits_0/model.pt").unlink()
    output = second_run(workdir, "--cores", "2")
    assert output.startswith("rc=0") and "model.pt is missing (deleted?)" in output, output[-3000:]
    after = finished()
    assert after["prepare_exp"] == before["prepare_exp"]
    assert all(after[s] > before[s] for s in after if s != "prepare_exp")
    train = json.loads((steps / "train_fold--sk_digits_0/metrics.json").read_text())["results"]
    assert train["resumed_from"].endswith("last.ckpt")  # the finished training is not repeated
    assert (workdir / "results/quick/summary.json").read_bytes() == summary

    from PIL import Image

    for path in sorted((workdir / "data/RAW/DSET_sklearn_digits/images").glob("*.png"))[::2]:
        with Image.open(path) as img:
            flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        flipped.save(path)  # same names, new content
    before = finished()
    output = second_run(workdir, "--cores", "2")
    assert output.startswith("rc=0"), output[-3000:]
    after = finished()
    assert all(after[s] > before[s] for s in after)
    assert "Nothing to be done" in second_run(workdir, "--cores", "2")
