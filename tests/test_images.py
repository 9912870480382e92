"""Real image studies: images of any size and mode, timm backbones, augmentation, MML's pp, pretrained weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import run_snakemake
from mml_core.tasks.description import RGB_KEYS, SIZE_KEYS, TaskDescription
from mml_core.tasks.description import count_classes, write_task_file
from mml_core.tasks.splits import make_folds, split_test
from mml_core.tasks.types import png_modalities

CLASSES = {0: "warm", 1: "cool"}
MODES = ("RGB", "RGB", "RGB", "RGBA", "P", "L", "I;16")


def _image(label: int, size: tuple[int, int], mode: str, rng: np.random.Generator) -> Image.Image:
    """Warm images are bright and red, cool ones dark and blue (grey modes keep the brightness)."""
    height, width = size
    base = np.array([200, 90, 60]) if label == 0 else np.array([40, 70, 170])
    pixels = np.clip(base + rng.normal(0, 25, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257  # the full 16-bit range
        return Image.fromarray(grey)
    return image.convert(mode) if mode != "RGB" else image


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory) -> Path:
    """An MML data root with task 'shapes': 48 images of 40-200 px in every common mode, 2 classes."""
    root = tmp_path_factory.mktemp("shapes")
    dset = root / "RAW" / "DSET_shapes"
    rng = np.random.default_rng(0)
    samples, labels = {}, []
    for i in range(48):
        label = i % 2
        size = (int(rng.integers(40, 200)), int(rng.integers(40, 200)))
        path = dset / "images" / f"s{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        _image(label, size, MODES[i % len(MODES)], rng).save(path)
        samples[f"s{i:02d}"] = {"image": f"images/s{i:02d}.png", "class": label}
        labels.append(label)
    train, test = split_test(list(samples), labels, 0.25, seed=0)
    folds = make_folds(train, [samples[i]["class"] for i in train], 3, seed=0)
    desc = TaskDescription(
        name="shapes", task_type="classification", idx_to_class=dict(CLASSES),
        modalities=png_modalities("classification"), train_folds=folds,
        train_samples={i: samples[i] for i in train}, test_samples={i: samples[i] for i in test},
        means=dict.fromkeys(RGB_KEYS, 0.5), stds=dict.fromkeys(RGB_KEYS, 0.25),
        sizes=dict(zip(SIZE_KEYS, (40, 199, 40, 199))),
        class_occ=count_classes(CLASSES, [samples[i]["class"] for i in train]),
    )  # fmt: skip
    write_task_file(desc, dset / "TASK_shapes.json")
    return root


def experiment(path: Path, **sections) -> Path:
    """An experiment file on task 'shapes' with a timm backbone: three epochs of fold 0, small batches."""
    base = {
        "proj": "shapes",
        "task_list": ["shapes"],
        "pivot": {"name": "shapes"},
        "mode": {"cv": False},
        "trainer": {"max_epochs": 3, "limit_train_batches": 1.0, "limit_val_batches": 1.0},
        "arch": {"name": "test_resnet"},
        "sampling": {"batch_size": 12},
        "optimizer": {"lr": 0.01},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(base))
    return path


RESIZE = {"id": "size48", "pipeline": [{"name": "Resize", "height": 48, "width": 48}]}
ALBUMENTATIONS = {
    "backend": "albumentations",
    "pipeline": [{"name": "HorizontalFlip", "p": 0.5}, {"name": "RandomBrightnessContrast", "p": 0.5},
                 {"name": "Affine", "rotate": [-10, 10], "p": 0.5}],
}  # fmt: skip
TORCHVISION = {
    "backend": "torchvision",
    "pipeline": [{"name": "RandomHorizontalFlip", "p": 0.5}, {"name": "RandomResizedCrop", "size": [40, 40],
                                                            "scale": [0.6, 1.0], "antialias": True}],
}  # fmt: skip


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("augmentations", "sampling"),
    [(ALBUMENTATIONS, {"balanced": True, "enable_caching": True}),
     (TORCHVISION, {"balanced": True, "enable_caching": False, "num_workers": 2})],
    ids=["albumentations-cached", "torchvision-streamed-workers"],
)  # fmt: skip
def test_timm_backbone_augmentation_and_sampling_on_mixed_images(tmp_path, shapes_root, augmentations, sampling):
    config = experiment(tmp_path / "shapes.yaml", data_dir=str(shapes_root), preprocessing=RESIZE,
                        augmentations={"cpu": augmentations}, sampling=sampling)  # fmt: skip
    run_snakemake(tmp_path, "--cores", "2", configfiles=(config,))
    root = tmp_path / "results/shapes"
    tasks = read_json(root / "tasks.json")
    assert tasks["shapes"]["preprocessed"] == "none"  # no size48 version on disk: resized on the fly
    train = read_json(root / "steps/train_fold--shapes_0/metrics.json")["results"]
    assert [r["epoch"] for r in train["history"]] == [0, 1, 2]
    summary = read_json(root / "summary.json")
    acc = summary["tasks"]["shapes"]["acc"]["mean"]
    assert 0.0 <= acc <= 1.0 and summary["tasks"]["shapes"]["auroc"]["mean"] > 0.5
    from mml_core.results.predictions import read_predictions

    predictions = read_predictions(root / "steps/predict_fold--shapes_0_None/predictions.npz")
    assert predictions["test"]["logits"].shape == (12, 2)
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", configfiles=(config,)).stdout


@pytest.mark.e2e
def test_snakemake_pp_writes_mml_preprocessed_layout_that_runs_read(tmp_path, shapes_root):
    data = tmp_path / "data"
    import shutil

    shutil.copytree(shapes_root, data)
    config = experiment(tmp_path / "shapes.yaml", data_dir=str(data), preprocessing=RESIZE)
    configfiles = (config,)
    run_snakemake(tmp_path, "--cores", "2", "pp", configfiles=configfiles)
    task_file = data / "PREPROCESSED/size48/DSET_shapes/TASK_shapes.json"
    desc = read_json(task_file)
    assert desc["sizes"] == [48, 48, 48, 48] and len(desc["train_samples"]) == 36
    image = Image.open(data / "PREPROCESSED/size48/DSET_shapes" / next(iter(desc["test_samples"].values()))["image"])
    assert image.size == (48, 48) and image.mode == "RGB"
    assert "Nothing to be done" in run_snakemake(tmp_path, "-n", "pp", configfiles=configfiles).stdout
    run_snakemake(tmp_path, "--cores", "2", configfiles=configfiles)
    assert read_json(tmp_path / "results/shapes/tasks.json")["shapes"]["preprocessed"] == "size48"


def test_every_image_mode_is_read_as_8_bit_rgb(shapes_root):
    from mml_core.tasks.images import read_rgb

    images = sorted((shapes_root / "RAW/DSET_shapes/images").glob("*.png"))
    modes = {Image.open(p).mode for p in images}
    assert {"RGB", "RGBA", "P", "L"} <= modes and any(m.startswith("I") for m in modes)
    for path in images:
        array = read_rgb(path)
        assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
        # a 16-bit image keeps its levels (scaled from its own range), not just 0 and 255
        if Image.open(path).mode.startswith("I"):
            assert len(np.unique(array)) > 16


# -- pretrained weights -----------------------------------------------------------------------------


@pytest.fixture
def tiny_cfg(demo_data, tmp_path, monkeypatch):
    from mml_core.config import load_config

    monkeypatch.chdir(tmp_path)

    def make(**arch):
        return load_config({
            "data_dir": str(demo_data), "mode": {"cv": False}, "arch": {"name": "test_resnet", **arch},
            "trainer": {"max_epochs": 1, "limit_train_batches": 2, "limit_val_batches": 1, "enable_progress_bar": False},
            "optimizer": {"lr": 1e-12},
        })  # fmt: skip

    return make


def test_training_starts_from_a_weights_file(tiny_cfg, tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    from mml_core.schedulers import TrainingScheduler

    torch.manual_seed(123)
    source = timm.create_model("test_resnet", num_classes=1000)  # with the classifier, as published weights are
    weights = tmp_path / "test_resnet.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))
    scheduler = TrainingScheduler(tiny_cfg(pretrained=True, weights=str(weights)))
    scheduler.set_active_naming(1)
    scheduler.train_fold("sk_digits", 0)
    trained = torch.load(tmp_path / "results/default/steps/train_fold--sk_digits_0/model.pt")["state_dict"]
    kernel = "backbone.conv1.0.weight"  # test_resnet's first convolution
    saved = source.state_dict()[kernel.removeprefix("backbone.")]
    # an lr of 1e-12 leaves the loaded weights as they were; a fresh initialisation differs
    assert torch.allclose(trained[kernel], saved, atol=1e-8)
    fresh = TrainingScheduler(tiny_cfg()).create_model([scheduler.get_struct("sk_digits")])
    assert not torch.allclose(fresh.network.state_dict()[kernel], saved)


def test_weights_of_another_architecture_are_refused(tiny_cfg, tmp_path):
    import torch

    from mml_core.config import MisconfigurationError
    from mml_core.schedulers import TrainingScheduler

    weights = tmp_path / "other.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(3, 3)}}, weights)
    scheduler = TrainingScheduler(tiny_cfg(pretrained=True, weights=str(weights)))
    with pytest.raises(MisconfigurationError, match="do not fit the backbone"):
        scheduler.create_model([scheduler.get_struct("sk_digits")])


@pytest.mark.parametrize(
    ("arch", "message"),
    [({"pretrained": True}, "no weights of timm model 'test_resnet' are on this machine"),
     ({"pretrained": True, "weights": "nowhere.safetensors"}, "arch.weights=nowhere.safetensors does not exist"),
     ({"name": "small_cnn", "pretrained": True}, "small_cnn has no published weights")],
    ids=["not-in-cache", "missing-file", "own-backbone"],
)  # fmt: skip
def test_missing_pretrained_weights_stop_planning_with_where_to_put_them(tmp_path, arch, message):
    empty_cache = tmp_path / "hf"
    config = experiment(tmp_path / "pretrained.yaml", arch={"name": "test_resnet", **arch})
    proc = run_snakemake(tmp_path, "-n", configfiles=(config,), env={"HF_HUB_CACHE": str(empty_cache)}, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in output, output[-2000:]
    if "cache" in message or "this machine" in message:
        assert f"{empty_cache}/models--timm--test_resnet" in output and "arch.weights" in output
    assert "Traceback" not in output and not (tmp_path / "results").exists()


def test_weights_in_the_local_hugging_face_cache_are_found(tmp_path, monkeypatch):
    from mml_core.models.pretrained import cached_timm_weights, check_weights

    snapshot = tmp_path / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"x")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert cached_timm_weights("resnet18") == ["resnet18.a1_in1k"]
    assert cached_timm_weights("resnet18.a1_in1k") == ["resnet18.a1_in1k"]
    assert cached_timm_weights("resnet18.tv_in1k") == [] and cached_timm_weights("resnet34") == []
    check_weights({"name": "resnet18", "pretrained": True, "weights": None})
    assert os.environ["HF_HUB_CACHE"] == str(tmp_path)
