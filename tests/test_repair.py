"""Finished results that were lost, truncated or computed from other data are redone by a plain rerun;
a rerun that fails keeps the summary people look at.

Each test works on a copy of the session's finished quick run (results, demo data, Snakemake's
records), damages it as a user, a full disk or an interrupted copy would, and runs the same
snakemake command again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import copy_workdir, run_snakemake

pytestmark = pytest.mark.e2e

ROOT = Path("results/quick")
STEPS = ROOT / "steps"
PREDICT = STEPS / "predict_fold--sk_digits_0_None"
TEST = STEPS / "test_task--sk_digits_None"
FINISH = STEPS / "finish_exp"
# what people look at: finish_exp's outputs
PEOPLE = ["summary.json", "summary.md", "summary.csv", "plots/fold_metrics.png", "plots/learning_curves/sk_digits.png",
          "plots/confusion_matrix/sk_digits.png"]  # fmt: skip


@pytest.fixture
def workdir(finished_quick, tmp_path) -> Path:
    return copy_workdir(finished_quick, tmp_path / "work")


def output_of(proc) -> str:
    return proc.stdout + proc.stderr


def people_files(workdir: Path) -> dict[str, bytes]:
    return {name: (workdir / ROOT / name).read_bytes() for name in PEOPLE}


def test_truncated_and_deleted_results_are_redone_with_the_steps_that_read_them(workdir):
    before = people_files(workdir)
    record = workdir / PREDICT / "metrics.json"
    record.write_bytes(record.read_bytes()[:100])  # finish_exp used to fail on this with a bare JSONDecodeError
    (workdir / TEST / "metrics.json").unlink()
    summary = workdir / ROOT / "summary.json"
    summary.write_bytes(summary.read_bytes()[:50])
    train_mtime = (workdir / STEPS / "train_fold--sk_digits_0/metrics.json").stat().st_mtime_ns

    dry = output_of(run_snakemake(workdir, "-n"))
    assert "Step predict_fold--sk_digits_0_None is finished but incomplete: its metrics.json is not a valid record" in dry
    assert "A run (not this dry run, which moves nothing) moves its folder aside" in dry
    assert "Step test_task--sk_digits_None is finished but incomplete: its metrics.json is missing, but finished " \
           "steps read its results" in dry  # fmt: skip
    assert "Step finish_exp is finished but incomplete: summary.json has 50 bytes, but" in dry
    assert record.read_bytes() == record.read_bytes()[:100] and not list((workdir / STEPS).glob("*.broken-*"))

    output = output_of(run_snakemake(workdir, "--cores", "2"))
    assert "moved its folder to results/quick/steps/predict_fold--sk_digits_0_None.broken-" in output
    assert json.loads(record.read_text())["step"] == "predict_fold--sk_digits_0_None"
    assert (workdir / TEST / "metrics.json").is_file()
    assert (workdir / STEPS / "train_fold--sk_digits_0/metrics.json").stat().st_mtime_ns == train_mtime
    broken = list((workdir / STEPS).glob("predict_fold--sk_digits_0_None.broken-*/metrics.json"))
    assert len(broken) == 1 and len(broken[0].read_bytes()) == 100  # kept for inspection
    # the same model and data: the redone summary equals the one before the damage, byte for byte
    assert people_files(workdir)["summary.json"] == before["summary.json"]
    assert "Nothing to be done" in output_of(run_snakemake(workdir, "--cores", "2"))


def test_replaced_images_rerun_every_step_that_reads_them(workdir):
    assert "Nothing to be done" in output_of(run_snakemake(workdir, "-n"))
    fingerprint = workdir / ROOT / "fingerprints/sk_digits.json"
    before = fingerprint.read_bytes()
    for path in sorted((workdir / "data/RAW/DSET_sklearn_digits/images").glob("*.png"))[:20]:
        with Image.open(path) as img:
            inverted = Image.fromarray(255 - np.asarray(img))
        inverted.save(path)  # same names, new content
    plan = output_of(run_snakemake(workdir, "-n"))
    assert "The files of task sk_digits changed since the last plan" in plan
    assert fingerprint.read_bytes() != before
    for rule in ("prepare_exp", "train_fold", "predict_fold", "test_task", "finish_exp"):
        assert f"rule {rule}:" in plan, plan
    assert "reason: Updated input files: results/quick/fingerprints/sk_digits.json" in plan
    # the file changes once per change of the data: planning again leaves it as it is
    mtime = fingerprint.stat().st_mtime_ns
    run_snakemake(workdir, "-n")
    assert fingerprint.stat().st_mtime_ns == mtime


def test_a_failing_finish_exp_keeps_the_previous_summary(workdir):
    before = people_files(workdir)
    predictions = workdir / PREDICT / "predictions.npz"
    predictions.write_bytes(b"\0" * predictions.stat().st_size)  # damaged in place: planning cannot tell
    proc = run_snakemake(workdir, "--cores", "2", "--forcerun", "finish_exp", check=False)
    output = output_of(proc)
    assert proc.returncode != 0
    assert f"Predictions file {PREDICT / 'predictions.npz'} cannot be read" in output, output[-3000:]
    assert "moved it to predictions.npz.corrupt. Run the same snakemake command again" in output
    assert "restored the summary and plots of the last complete run (6 files" in output
    assert people_files(workdir) == before
    assert not (workdir / FINISH / "metrics.json").exists()  # finish_exp did not finish: the next run redoes it

    output = output_of(run_snakemake(workdir, "--cores", "2"))
    assert "Step predict_fold--sk_digits_0_None is finished but incomplete: steps/predict_fold--sk_digits_0_None/" \
           "predictions.npz is missing" in output  # fmt: skip
    assert people_files(workdir)["summary.json"] == before["summary.json"]
    assert (workdir / FINISH / "metrics.json").is_file()
