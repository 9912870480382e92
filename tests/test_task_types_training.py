"""Training a segmentation step in one process: interrupted mid-epoch and resumed, it ends exactly as an
uninterrupted one (augmentation moving masks with images included)."""

from __future__ import annotations

import signal

import pytest
import torch
from test_resume import InterruptibleScheduler, SignalAt

from mml_core.config import load_config
from mml_core.jobs.runner import seed_everything
from mml_core.training.interrupted import TrainingInterrupted

SEGMENTATION = {
    "proj": "seg",
    "task_list": ["shapes_seg"],
    "pivot": {"name": "shapes_seg"},
    "arch": {"arch": "unet", "encoder": "resnet18", "drop_rate": 0.0},
    "trainer": {"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 1, "enable_progress_bar": False},
    "sampling": {"batch_size": 8},
    "loss": {"seg": {"_target_": "mml_core.models.losses.DiceCELoss"}},
    # geometric augmentation moves the masks too; its draws are seeded per sample
    "augmentations": {"cpu": {"backend": "albumentations", "pipeline": [
        {"name": "HorizontalFlip", "p": 0.5}, {"name": "Affine", "translate_percent": [-0.1, 0.1], "p": 0.7},
        {"name": "RandomBrightnessContrast", "p": 0.5}]}},
}  # fmt: skip


def scheduler_in(workdir, demo_data, monkeypatch, cls=InterruptibleScheduler, **overrides):
    """The scheduler of train_fold--shapes_seg_0 in ``workdir``, seeded as the job runner seeds a job."""
    monkeypatch.chdir(workdir)
    seed_everything(42, with_torch=True)
    scheduler = cls(load_config({"data_dir": str(demo_data), **SEGMENTATION, **overrides}))
    scheduler.set_active_naming(1)
    return scheduler


def test_interrupted_segmentation_training_resumes_exactly(demo_data, tmp_path, monkeypatch):
    (tmp_path / "reference").mkdir()
    reference = scheduler_in(tmp_path / "reference", demo_data, monkeypatch)
    reference.train_fold("shapes_seg", 0)
    (tmp_path / "work").mkdir()
    first = scheduler_in(tmp_path / "work", demo_data, monkeypatch)
    first.interrupt = SignalAt(signal.SIGTERM, 1, 2)  # mid-epoch
    with pytest.raises(TrainingInterrupted):
        first.train_fold("shapes_seg", 0)
    resumed = scheduler_in(tmp_path / "work", demo_data, monkeypatch)
    resumed.train_fold("shapes_seg", 0)
    assert resumed.step_results["resumed_from"].endswith("interrupted.ckpt")
    model = "results/seg/steps/train_fold--shapes_seg_0/model.pt"
    expected, got = (torch.load(tmp_path / d / model)["state_dict"] for d in ("reference", "work"))
    assert all(torch.equal(got[k], expected[k]) for k in expected), "resumed weights differ"
    keys = ("val/shapes_seg/loss", "val/shapes_seg/dice", "val/shapes_seg/iou")
    assert [[r[k] for k in keys] for r in resumed.step_results["history"]] == [
        [r[k] for k in keys] for r in reference.step_results["history"]
    ]

