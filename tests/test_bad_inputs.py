"""Bad input after a finished run: each stops with one clear message, and no finished result is lost.

One quick experiment is run once; every test works on a copy of its working directory (results,
demo data and Snakemake's records), makes one mistake, runs the same snakemake command a user
would, and checks the message and that the earlier results are still on disk, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, copy_workdir, run_snakemake

pytestmark = pytest.mark.e2e

STEP = "results/quick/steps"
KEPT = [
    "results/quick/summary.json",
    "results/quick/summary.md",
    f"{STEP}/train_fold--sk_digits_0/model.pt",
    f"{STEP}/predict_fold--sk_digits_0_None/predictions.npz",
    f"{STEP}/predict_fold--sk_digits_0_None/metrics.json",
    "results/quick/checkpoints/train_fold--sk_digits_0",
]


@pytest.fixture
def workdir(finished_quick, tmp_path) -> Path:
    return copy_workdir(finished_quick, tmp_path / "work")


def snapshot(workdir: Path) -> dict[str, bytes]:
    files = {}
    for name in KEPT:
        path = workdir / name
        if path.is_dir():
            files.update({str(p.relative_to(workdir)): p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()})
        else:
            files[name] = path.read_bytes()
    return files


def kept_results(before: dict[str, bytes], workdir: Path) -> None:
    """Every earlier result file still exists with the same bytes (stale checkpoints may be moved aside)."""
    for name, data in before.items():
        path = workdir / name
        copies = [path, *path.parent.parent.glob(f"{path.parent.name}.stale-*/{path.name}")]
        assert any(p.is_file() and p.read_bytes() == data for p in copies), f"{name} was changed or lost"


def fails_with(workdir: Path, message: str, *config: str, args: tuple[str, ...] = ("--cores", "2"), **kw) -> str:
    before = snapshot(workdir)
    proc = run_snakemake(workdir, *args, config=list(config), check=False, **kw)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert message in output, output[-3000:]
    kept_results(before, workdir)
    return output


# -- stopped while planning: nothing runs --------------------------------------------------------

@pytest.mark.parametrize(
    ("config", "message"),
    [
        (["trainer={max_epoch: 3}"], "Unknown config key 'trainer.max_epoch'. Allowed keys under 'trainer'"),
        (["trainer={max_epochs: three}"], "'trainer.max_epochs' must be integer, got 'three'"),
        (["mode={subroutines: []}"], "mode.subroutines is empty. Choose one or more of ['train', 'predict', 'test']"),
        (["mode={subroutines: [train, deploy]}"], "Unknown subroutine(s) ['deploy'] for TrainingScheduler"),
        (["task_list=[sk_digits, mnist]"], "Unknown task 'mnist'"),
        (["pivot={name: sk_digitz}"], "Unknown task 'sk_digitz'"),
        (["pivot={name: sk_digits, tags: +nested?9}"], "nested?9: the task has 5 folds; choose a fold in 0..4"),
        (["mode={scheduler: no_such_module:Scheduler}"], "cannot import module 'no_such_module'"),
        (["mode={eval_on: [sk_digits_parity]}", "task_list=[sk_digits, sk_digits_parity]"],
         "cannot be evaluated through the head of pivot sk_digits"),
        (["data_dir=/nonexistent/mml", "task_list=[isic]", "pivot={name: isic}"],
         "data_dir '/nonexistent/mml' does not exist"),
        (["trainer={max_epochs: -1}"], "trainer.max_epochs=-1 trains without end: Lightning then stops only at "
                                       "trainer.max_steps or trainer.max_time, and neither is set"),
        (["trainer={max_epochs: 0}"], "trainer.max_epochs=0 trains nothing: no step would have a trained model"),
        (["trainer={limit_train_batches: 0}"], "trainer.limit_train_batches=0 runs no training batch"),
        (["trainer={limit_val_batches: 0}"], "trainer.limit_val_batches=0 runs no validation batch, but the train "
                                             "scheduler records the validation loss"),
        (["pivot={name: 'sk_${digits'}"], "Config key 'pivot.name' holds 'sk_${digits', which OmegaConf reads as an "
                                          "interpolation ${...} and cannot resolve"),
        (["proj=.."], "Config key 'proj' is '..': the project name is the folder results/<proj>/"),
        (["proj=."], "Config key 'proj' is '.': the project name is the folder results/<proj>/"),
        (["optimizer={lr: .nan}"], "Config key 'optimizer.lr' is nan; numbers in the config must be finite"),
    ],
    ids=["unknown-key", "wrong-type", "empty-subroutines", "unknown-subroutine", "unknown-task", "unknown-pivot",
         "fold-out-of-range", "unknown-scheduler", "incompatible-eval-on", "missing-data-dir", "endless-epochs",
         "no-epochs", "no-train-batches", "no-val-batches", "interpolation-in-a-name", "proj-dot-dot", "proj-dot",
         "nan-lr"],
)
def test_bad_config_stops_before_anything_runs(workdir, config, message):
    output = fails_with(workdir, message, *config)
    assert "Traceback" not in output


def test_task_file_with_missing_keys(workdir):
    task = workdir / "data/RAW/DSET_sklearn_digits/TASK_sk_digits.json"
    data = json.loads(task.read_text())
    del data["train_folds"]
    task.write_text(json.dumps(data))
    fails_with(workdir, "Task 'sk_digits'")
    fails_with(workdir, "lacks the key(s) train_folds")


TASK_FILE = "data/RAW/DSET_sklearn_digits/TASK_sk_digits.json"


def _gap_in_class_indices(task: dict) -> None:
    task["idx_to_class"]["11"] = "eleven"


def _duplicate_class_name(task: dict) -> None:
    task["idx_to_class"]["1"] = "0"


def _empty_fold(task: dict) -> None:
    task["train_folds"][2] = []


def _fold_missing_a_class(task: dict) -> None:
    zeros = [i for i in task["train_folds"][1] if task["train_samples"][i]["class"] == 0]
    task["train_folds"][1] = [i for i in task["train_folds"][1] if i not in zeros]
    task["train_folds"][2] += zeros


def _test_sample_in_train(task: dict) -> None:
    sample = next(iter(task["test_samples"]))
    task["train_samples"][sample] = task["test_samples"][sample]
    task["train_folds"][0].append(sample)


def _empty_test_split(task: dict) -> None:
    task["test_samples"] = {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_gap_in_class_indices, "idx_to_class has the class indices [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11], but a model "
                                "has one output per class 0..C-1 without gaps"),
        (_duplicate_class_name, "idx_to_class names ['0'] more than once"),
        (_empty_fold, "train_folds [2] are empty: training on such a fold has no validation data"),
        (_fold_missing_a_class, "fold 1 has no sample of the class(es) ['0'], so validation on it cannot score them"),
        (_test_sample_in_train, "1 test sample id(s) are also training samples"),
        (_empty_test_split, "has no test samples, but mode.subroutines includes test"),
    ],
    ids=["gap-in-class-indices", "duplicate-class-name", "empty-fold", "fold-missing-a-class", "test-in-train",
         "empty-test-split"],
)
def test_bad_task_file_stops_planning(workdir, change, message):
    path = workdir / TASK_FILE
    task = json.loads(path.read_text())
    change(task)
    path.write_text(json.dumps(task))
    output = fails_with(workdir, message)
    assert f"({TASK_FILE})" in output and "Traceback" not in output


def test_corrupt_task_file(workdir):
    (workdir / "data/RAW/DSET_sklearn_digits/TASK_sk_digits.json").write_text('{"name": "sk_digits", ')
    fails_with(workdir, "is not valid JSON")


def test_new_task_with_missing_images(workdir):
    broken = workdir / "data/RAW/DSET_broken"
    broken.mkdir()
    shutil.copy(workdir / "data/RAW/DSET_sklearn_digits/TASK_sk_digits_low.json", broken / "TASK_broken.json")
    output = fails_with(workdir, "points to missing image files, first:", "task_list=[sk_digits, broken]")
    assert "DSET_broken/images/digit_" in output


# -- stopped in a job: the failing step keeps its earlier results ---------------------------------

def test_nan_loss_stops_training_with_the_fix(workdir):
    output = fails_with(workdir, "The training loss is nan", "optimizer={lr: 1.0e+30}")
    assert "Lower optimizer.lr" in output


def test_gpu_accelerator_without_a_gpu(workdir):
    fails_with(workdir, "trainer.accelerator=gpu but no CUDA GPU is visible", "trainer={accelerator: gpu}")


def test_full_disk_while_checkpointing_is_named(workdir):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    checkpoints = workdir / "results/quick/checkpoints"
    saved = workdir / "checkpoints.saved"
    checkpoints.rename(saved)
    checkpoints.mkdir()
    # room for the finished run's checkpoint files but not for the copy that replaces last.ckpt atomically
    files = [p.stat().st_size for p in saved.rglob("*") if p.is_file()]
    size_kib = (sum(files) + max(files) // 2) // 1024 + 64
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(checkpoints)], check=True)
    try:
        shutil.copytree(saved, checkpoints, dirs_exist_ok=True)
        output = fails_with(workdir, "No space left on device while writing", "trainer={max_epochs: 2}")
        assert "checkpoints/train_fold--sk_digits_0/" in output and "Free space on the file system of" in output
    finally:
        subprocess.run(["umount", "--lazy", str(checkpoints)], check=True)


def test_results_of_another_config_without_snakemake_records(workdir):
    # .snakemake/ deleted (or results copied from elsewhere): Snakemake cannot tell that the
    # results were computed with 1 epoch; they must not be reported as results of 2 epochs
    shutil.rmtree(workdir / ".snakemake")
    fails_with(workdir, "were computed under a different config", "trainer={max_epochs: 2}")


# -- the working directory itself ------------------------------------------------------------------

def start_forced_test(workdir: Path, launcher: list[str]) -> subprocess.Popen:
    """A run that reruns test_task (and finish_exp), started by ``launcher`` in ``workdir``; returns once
    it holds the lock and has recorded itself as its holder."""
    first = subprocess.Popen(
        [*launcher, "-s", str(REPO / "Snakefile"), "--cores", "1", "--configfile", str(REPO / "config/quick.yaml"),
         "--forcerun", "test_task"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not (workdir / ".snakemake/locks/mml_core-holder.json").is_file():
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    return first


def test_a_second_snakemake_and_a_dry_run_are_refused_while_python_m_snakemake_runs(workdir):
    first = start_forced_test(workdir, [sys.executable, "-m", "snakemake"])
    try:
        locks = sorted(p.name for p in (workdir / ".snakemake/locks").iterdir())
        for args in (("--cores", "2"), ("-n",)):
            output = fails_with(workdir, f"is locked by snakemake pid {first.pid} on host", args=args)
            assert "which is still running. Two runs would write the same results" in output
            assert first.poll() is None, "the first run ended before the second was refused: nothing was tested"
            assert sorted(p.name for p in (workdir / ".snakemake/locks").iterdir()) == locks
    finally:
        assert first.wait(timeout=300) == 0
    assert (workdir / f"{STEP}/test_task--sk_digits_None/metrics.json").is_file()


def test_a_lock_without_a_recorded_holder_is_refused_with_the_fix(workdir):
    locks = workdir / ".snakemake/locks"
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "0.output.lock").write_text(str(workdir / f"{STEP}/finish_exp/metrics.json"))
    fails_with(workdir, "locked by a snakemake run that recorded no holder (lock files 0.output.lock")
    assert (locks / "0.output.lock").is_file()
    proc = run_snakemake(workdir, "--unlock")
    assert not locks.exists(), proc.stdout + proc.stderr
    assert "Nothing to be done" in run_snakemake(workdir, "--cores", "2").stderr


def test_read_only_results_folder(workdir):
    # root may write into any folder whatever its mode bits, so as root the folders are made immutable
    folders = [workdir / STEP, *(workdir / STEP).iterdir()]
    lock, unlock = (["chattr", "+i"], ["chattr", "-i"]) if os.geteuid() == 0 else (["chmod", "a-w"], ["chmod", "u+w"])
    subprocess.run([*lock, *map(str, folders)], check=True)
    try:
        fails_with(workdir, "is not writable, so the steps of results/quick cannot write their results",
                   "metrics={bootstrap: 3}")
    finally:
        subprocess.run([*unlock, *map(str, folders)], check=True)
