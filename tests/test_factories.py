"""The Lightning factories of the scheduler: datamodule, model, trainer, tuning, and a resumed fit."""

from __future__ import annotations

import datetime

import numpy as np
import pytest
import torch

from mml_core.config import load_config
from mml_core.schedulers import TrainingScheduler

TINY = {"trainer": {"max_epochs": 1, "limit_train_batches": 3, "limit_val_batches": 2, "enable_progress_bar": False}}


@pytest.fixture
def make_scheduler(demo_data, tmp_path, monkeypatch):
    """A scheduler of the tiny config plus ``overrides`` (its config is read-only once built)."""
    monkeypatch.chdir(tmp_path)

    def make(**overrides):
        cfg = load_config({"data_dir": str(demo_data), "task_list": ["sk_digits", "sk_digits_parity"], **TINY})
        for section, values in overrides.items():
            cfg[section].update(values)
        scheduler = TrainingScheduler(cfg)
        scheduler.set_active_naming(1)  # train_fold--sk_digits_0
        return scheduler

    return make


@pytest.fixture
def scheduler(make_scheduler):
    return make_scheduler()


def test_create_datamodule_splits_by_fold_and_caches_images(make_scheduler):
    scheduler = make_scheduler(sampling={"enable_caching": True}, augmentations={"normalization": "task"})
    struct = scheduler.get_struct("sk_digits")
    dm = scheduler.create_datamodule(struct, fold=2)
    dm.setup()
    desc = scheduler.task_factory.load_description("sk_digits")
    splits = dm.datasets["sk_digits"]
    assert splits["val"].ids == desc.train_folds[2]
    assert len(splits["train"]) + len(splits["val"]) == len(desc.train_samples)
    assert len(splits["test"]) == len(desc.test_samples) and len(splits["unlabeled"]) == 0
    # the decoded uint8 images of train and val are cached; test is read per sample
    assert len(splits["train"].cached) == len(splits["train"]) and splits["train"].cached[0].shape == (8, 8, 3)
    assert splits["train"].cached[0].dtype == np.uint8 and splits["test"].cached is None
    x, y, idx = next(iter(dm.val_dataloader()[0]))
    assert x.shape == (64, 3, 8, 8) and y.dtype == torch.long and idx.tolist() == list(range(64))
    train = torch.stack([splits["train"][i][0] for i in range(len(splits["train"]))])
    assert abs(float(train.mean())) < 0.2  # normalised with the task's mean/std
    with pytest.raises(ValueError, match="Fold 7 is out of range .* 5 folds"):
        scheduler.create_datamodule(struct, fold=7).setup()


def test_multitask_datamodule_and_model(scheduler):
    structs = [scheduler.get_struct("sk_digits"), scheduler.get_struct("sk_digits_parity")]
    dm = scheduler.create_datamodule(structs)
    dm.setup()
    batch, _, _ = next(iter(dm.train_dataloader()))
    assert set(batch) == {"sk_digits", "sk_digits_parity"}
    model = scheduler.create_model(structs, task_weights=[3.0, 1.0])
    # MML's sampling.batch_size counts all tasks: 64 over two tasks is 32 each
    assert model(batch["sk_digits"][0], 0).shape == (32, 10)
    assert model(batch["sk_digits_parity"][0], 1).shape == (32, 2)
    assert model.task_weights.tolist() == [0.75, 0.25]
    loss = model.training_step(batch, 0)
    assert loss.ndim == 0 and loss.requires_grad
    with pytest.raises(ValueError, match="one non-negative weight per task"):
        scheduler.create_model(structs, task_weights=[1.0])


def test_create_trainer_has_mml_default_callbacks(make_scheduler):
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger

    stop = {"_target_": "lightning.pytorch.callbacks.EarlyStopping", "monitor": "train/loss"}
    scheduler = make_scheduler(cbs={"stop": stop})
    trainer = scheduler.create_trainer(monitor=("val/sk_digits/loss", "min"), metrics_callback=True)
    checkpoints = [cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)]
    assert len(checkpoints) == 2
    assert scheduler.checkpoint_callback is checkpoints[0]
    assert checkpoints[0].monitor == "val/sk_digits/loss" and checkpoints[0].save_last
    assert checkpoints[1]._train_time_interval == datetime.timedelta(minutes=30)
    assert all(cb.dirpath == str(scheduler.get_checkpoints_dir().resolve()) for cb in checkpoints)
    assert scheduler.metrics_callback in trainer.callbacks
    assert any(isinstance(cb, EarlyStopping) for cb in trainer.callbacks)
    assert isinstance(trainer.logger, CSVLogger)
    assert trainer.max_epochs == 1


def test_lightning_tune_finds_lr_and_is_skipped_when_resuming(make_scheduler):
    lr_kwargs = {"num_training": 20, "min_lr": 1e-5, "max_lr": 0.1, "early_stop_threshold": None}
    tuned = {"tune": {"lr": True, "lr_kwargs": lr_kwargs}, "trainer": {"limit_train_batches": 1.0}}
    scheduler = make_scheduler(**tuned)
    struct = scheduler.get_struct("sk_digits")
    model, dm = scheduler.create_model([struct]), scheduler.create_datamodule(struct)
    before = model.lr
    scheduler.lightning_tune(scheduler.create_trainer(), model, dm)
    assert model.lr != before
    # once the step has a checkpoint (an interrupted run), tuning is skipped: the checkpoint holds the tuned lr
    make_scheduler(**tuned).train_fold("sk_digits", 0)
    scheduler = make_scheduler(**tuned)
    model = scheduler.create_model([struct])
    scheduler.lightning_tune(scheduler.create_trainer(), model, dm)
    assert model.lr == before


@pytest.mark.parametrize("store_best", [False, True])
def test_every_epoch_leaves_last_ckpt_and_without_a_monitor_nothing_else(make_scheduler, store_best):
    # an interrupted step resumes from last.ckpt; without store_best there is no monitor, and the one
    # file per epoch must still be written (Lightning writes save_last only beside a top-k file)
    scheduler = make_scheduler(mode={"store_best": store_best}, trainer={"max_epochs": 2})
    scheduler.train_fold("sk_digits", 0)
    files = sorted(p.name for p in scheduler.get_checkpoints_dir().glob("*.ckpt"))
    assert files == (["best-epoch001.ckpt", "last.ckpt"] if store_best else ["last.ckpt"])
    state = torch.load(scheduler.get_checkpoints_dir() / "last.ckpt", weights_only=False)
    assert state["epoch"] == 1


def test_train_fold_writes_weights_history_and_checkpoints(scheduler, tmp_path):
    scheduler.train_fold("sk_digits", 0)
    results = scheduler.step_results
    assert results["resumed_from"] is None and [r["epoch"] for r in results["history"]] == [0]
    assert results["monitored"] == results["history"][-1]["val/sk_digits/loss"]
    saved = torch.load(tmp_path / "results/default/steps/train_fold--sk_digits_0/model.pt")
    assert saved["task"] == "sk_digits" and saved["fold"] == 0
    ckpt_dir = scheduler.get_checkpoints_dir()
    assert (ckpt_dir / "last.ckpt").is_file() and (ckpt_dir / "step.json").is_file()
    # the metrics history is part of the checkpoint, so a resumed step keeps earlier epochs
    state = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    assert any(v.get("metrics") == results["history"] for v in state["callbacks"].values())
