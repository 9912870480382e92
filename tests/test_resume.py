"""Resumable training in one process: exact resumption after a signal, checkpoint safety, stale checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import signal

import pytest
import pytorch_lightning as pl
import torch

from mml_core.config import load_config
from mml_core.data.sampler import EpochShuffleSampler
from mml_core.schedulers import MisconfigurationError, TrainingScheduler
from mml_core.jobs.runner import seed_everything
from mml_core.training.interrupted import TrainingInterrupted
from mml_core.training.resume import AtomicCheckpointIO, find_resume_checkpoint
from mml_core.training.safe_load import load_checkpoint

SETTINGS = {
    "trainer": {"max_epochs": 3, "limit_train_batches": 5, "limit_val_batches": 2, "enable_progress_bar": False},
    "arch": {"name": "small_cnn", "drop_rate": 0.3},
}


class SignalAt(pl.Callback):
    """Sends a signal to this process at a given training position, as Ctrl-C or scancel would."""

    def __init__(self, signum: int, epoch: int, batch: int):
        self.signum, self.epoch, self.batch = signum, epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (self.epoch, self.batch):
            os.kill(os.getpid(), self.signum)


class InterruptibleScheduler(TrainingScheduler):
    interrupt: SignalAt | None = None

    def before_training_hook(self, datamodule, model, trainer, fold, task_name):
        if self.interrupt is not None:
            trainer.callbacks.append(self.interrupt)


def make_scheduler(demo_data, workdir, monkeypatch, **overrides) -> InterruptibleScheduler:
    """A scheduler for the first train_fold step, seeded as the job runner seeds every job."""
    monkeypatch.chdir(workdir)
    seed_everything(42, with_torch=True)
    cfg = load_config({"data_dir": str(demo_data), **SETTINGS, **overrides})
    scheduler = InterruptibleScheduler(cfg)
    scheduler.set_active_naming(1)  # train_fold--sk_digits_0
    return scheduler


def weights(workdir) -> dict[str, torch.Tensor]:
    return torch.load(workdir / "results/default/steps/train_fold--sk_digits_0/model.pt")["state_dict"]


@pytest.mark.parametrize(("signum", "epoch", "batch"), [(signal.SIGTERM, 1, 2), (signal.SIGINT, 0, 4), (signal.SIGTERM, 2, 1)])
def test_resumed_training_equals_uninterrupted_training(demo_data, tmp_path, monkeypatch, signum, epoch, batch):
    reference = tmp_path / "reference"
    reference.mkdir()
    ref = make_scheduler(demo_data, reference, monkeypatch)
    ref.train_fold("sk_digits", 0)
    expected, expected_history = weights(reference), ref.step_results["history"]

    work = tmp_path / "interrupted"
    work.mkdir()
    first = make_scheduler(demo_data, work, monkeypatch)
    first.interrupt = SignalAt(signum, epoch, batch)
    with pytest.raises(TrainingInterrupted, match=f"Stopped by {signal.Signals(signum).name}"):
        first.train_fold("sk_digits", 0)
    assert (work / "results/default/checkpoints/train_fold--sk_digits_0/interrupted.ckpt").is_file()
    assert not (work / "results/default/steps/train_fold--sk_digits_0/model.pt").exists()

    resumed = make_scheduler(demo_data, work, monkeypatch)
    resumed.train_fold("sk_digits", 0)
    assert resumed.step_results["resumed_from"].endswith("interrupted.ckpt")
    got = weights(work)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected), "resumed weights differ"
    history = resumed.step_results["history"]
    assert [r["epoch"] for r in history] == [0, 1, 2]
    for mine, theirs in zip(history, expected_history):
        assert mine["val/sk_digits/loss"] == theirs["val/sk_digits/loss"]
    assert not (work / "results/default/checkpoints/train_fold--sk_digits_0/interrupted.ckpt").exists()


AUGMENTED = {
    "albumentations": {"backend": "albumentations", "pipeline": [
        {"name": "HorizontalFlip", "p": 0.5}, {"name": "RandomBrightnessContrast", "p": 0.8},
        {"name": "Affine", "translate_percent": [-0.1, 0.1], "p": 0.7}]},
    "torchvision": {"backend": "torchvision", "pipeline": [
        {"name": "RandomHorizontalFlip", "p": 0.5}, {"name": "RandomAffine", "degrees": 15, "translate": [0.1, 0.1]}]},
}  # fmt: skip


@pytest.mark.parametrize(
    ("backend", "workers"), [("albumentations", 0), ("albumentations", 2), ("torchvision", 2)]
)
def test_resumed_augmented_training_equals_uninterrupted_training(demo_data, tmp_path, monkeypatch, backend, workers):
    """Random augmentation is seeded per sample from (seed, epoch, index): a resumed run draws the same."""
    overrides = {"augmentations": {"cpu": AUGMENTED[backend]}, "sampling": {"num_workers": workers}}
    reference = tmp_path / "reference"
    reference.mkdir()
    ref = make_scheduler(demo_data, reference, monkeypatch, **overrides)
    ref.train_fold("sk_digits", 0)
    work = tmp_path / "interrupted"
    work.mkdir()
    first = make_scheduler(demo_data, work, monkeypatch, **overrides)
    first.interrupt = SignalAt(signal.SIGTERM, 1, 2)
    with pytest.raises(TrainingInterrupted):
        first.train_fold("sk_digits", 0)
    resumed = make_scheduler(demo_data, work, monkeypatch, **overrides)
    resumed.train_fold("sk_digits", 0)
    expected, got = weights(reference), weights(work)
    assert all(torch.equal(got[k], expected[k]) for k in expected), "resumed weights differ"
    assert [r["val/sk_digits/loss"] for r in resumed.step_results["history"]] == [
        r["val/sk_digits/loss"] for r in ref.step_results["history"]
    ]
    # the augmentation did change the data: an unaugmented run ends elsewhere
    plain = tmp_path / "plain"
    plain.mkdir()
    make_scheduler(demo_data, plain, monkeypatch, sampling={"num_workers": workers}).train_fold("sk_digits", 0)
    assert not all(torch.equal(weights(plain)[k], expected[k]) for k in expected)


def test_signal_handlers_are_restored_after_training(demo_data, tmp_path, monkeypatch):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    scheduler = make_scheduler(demo_data, tmp_path, monkeypatch, trainer={"max_epochs": 1, "limit_train_batches": 2})
    scheduler.train_fold("sk_digits", 0)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_sampler_order_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(range(50), seed=3), EpochShuffleSampler(range(50), seed=3)
    a.set_epoch(4)
    b.set_epoch(4)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(5)
    assert list(a) != list(b)
    c = EpochShuffleSampler(range(50), seed=3)
    c.set_epoch(4)
    full = list(c)
    c.resume_at(4, 20)
    assert list(c) == full[20:]
    assert list(c) == full  # the skip applies once


def _checkpoint(path, epoch):
    AtomicCheckpointIO().save_checkpoint({"state_dict": {}, "loops": {}, "epoch": epoch}, path)


def test_corrupt_checkpoints_are_moved_aside_and_the_previous_one_is_used(tmp_path, caplog):
    _checkpoint(tmp_path / "epoch001.ckpt", 1)
    _checkpoint(tmp_path / "last.ckpt", 2)
    data = (tmp_path / "last.ckpt").read_bytes()
    (tmp_path / "last.ckpt").write_bytes(data[: len(data) // 2])  # truncated by a kill or a full disk
    os.utime(tmp_path / "epoch001.ckpt", (1, 1))
    chosen = find_resume_checkpoint(tmp_path, ("last.ckpt", "epoch001.ckpt"))
    assert chosen == tmp_path / "epoch001.ckpt"
    assert (tmp_path / "last.ckpt.corrupt").is_file() and not (tmp_path / "last.ckpt").exists()
    assert "cannot be read" in caplog.text and "trying the previous one" in caplog.text
    (tmp_path / "epoch001.ckpt").write_bytes(b"not a checkpoint")
    assert find_resume_checkpoint(tmp_path, ("epoch001.ckpt",)) is None
    assert "restarts from the beginning" in caplog.text


class _Planted:
    """Unpickling this creates a file: what a hostile checkpoint in a shared results folder could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_planted_checkpoint_is_never_unpickled_but_moved_aside(tmp_path, caplog):
    marker = tmp_path / "pwned"
    _checkpoint(tmp_path / "epoch000.ckpt", 0)
    os.utime(tmp_path / "epoch000.ckpt", (1, 1))
    torch.save({"state_dict": {}, "loops": {}, "epoch": 3, "payload": _Planted(marker)}, tmp_path / "last.ckpt")
    assert find_resume_checkpoint(tmp_path, ("last.ckpt", "epoch000.ckpt")) == tmp_path / "epoch000.ckpt"
    assert not marker.exists()
    assert (tmp_path / "last.ckpt.corrupt").is_file()
    assert "holds objects other than tensors and plain data, which could run code" in caplog.text
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(tmp_path / "last.ckpt.corrupt")
    assert not marker.exists()


def test_a_planted_model_file_is_never_unpickled(demo_data, tmp_path, monkeypatch):
    scheduler = make_scheduler(demo_data, tmp_path, monkeypatch)
    model = tmp_path / "results/default/steps/train_fold--sk_digits_0/model.pt"
    model.parent.mkdir(parents=True)
    marker = tmp_path / "pwned"
    torch.save({"state_dict": {}, "payload": _Planted(marker)}, model)
    with pytest.raises(RuntimeError, match=r"model.pt holds objects other than tensors and plain data.*moved it to "
                                           r"model.pt.corrupt\. Run the same snakemake command again"):
        scheduler._load_network("sk_digits", 0)
    assert not marker.exists() and (model.parent / "model.pt.corrupt").is_file() and not model.exists()


def test_atomic_checkpoint_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    _checkpoint(path, 1)
    old = path.read_bytes()

    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        _checkpoint(path, 2)
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


def test_checkpoints_of_another_config_are_moved_aside(demo_data, tmp_path, monkeypatch):
    scheduler = make_scheduler(demo_data, tmp_path, monkeypatch, trainer={"max_epochs": 1, "limit_train_batches": 2})
    scheduler.train_fold("sk_digits", 0)
    changed = make_scheduler(demo_data, tmp_path, monkeypatch, trainer={"max_epochs": 2, "limit_train_batches": 2})
    changed.train_fold("sk_digits", 0)
    assert changed.step_results["resumed_from"] is None
    stale = list((tmp_path / "results/default/checkpoints").glob("train_fold--sk_digits_0.stale-*"))
    assert len(stale) == 1 and (stale[0] / "last.ckpt").is_file()
    marker = json.loads((tmp_path / "results/default/checkpoints/train_fold--sk_digits_0/step.json").read_text())
    assert marker["entry"] == "method: train_fold / ['sk_digits', 0]"


def test_checkpoint_of_another_model_under_the_same_config_stops_with_the_fix(demo_data, tmp_path, monkeypatch):
    scheduler = make_scheduler(demo_data, tmp_path, monkeypatch, trainer={"max_epochs": 1, "limit_train_batches": 2})
    scheduler.train_fold("sk_digits", 0)
    ckpt = tmp_path / "results/default/checkpoints/train_fold--sk_digits_0/last.ckpt"
    state = torch.load(ckpt, weights_only=False)
    state["state_dict"] = {k + "_old": v for k, v in state["state_dict"].items()}
    torch.save(state, ckpt)
    again = make_scheduler(demo_data, tmp_path, monkeypatch, trainer={"max_epochs": 1, "limit_train_batches": 2})
    with pytest.raises(MisconfigurationError, match="written by a different model .*move .*checkpoints/train_fold"):
        again.train_fold("sk_digits", 0)
    assert ckpt.is_file()  # nothing deleted


def test_nan_loss_stops_with_a_clear_message(demo_data, tmp_path, monkeypatch):
    class Poisoned(TrainingScheduler):
        def before_training_hook(self, datamodule, model, trainer, fold, task_name):
            with torch.no_grad():
                model.network.heads[0][1].bias.fill_(float("nan"))

    monkeypatch.chdir(tmp_path)
    scheduler = Poisoned(load_config({"data_dir": str(demo_data), **SETTINGS}))
    scheduler.set_active_naming(1)
    with pytest.raises(FloatingPointError, match=r"training loss is nan at epoch 1, batch 0.*Lower optimizer.lr"):
        scheduler.train_fold("sk_digits", 0)
