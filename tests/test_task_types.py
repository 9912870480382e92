"""MML's task types below the pipeline: task files, masks, targets, transforms, losses, metrics, networks,
predictions and plots of multi-label classification, regression and semantic segmentation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from mml_core.config import ConfigError, MisconfigurationError, load_config
from mml_core.tasks import TaskFileError, TaskStructFactory, read_task_file
from mml_core.tasks.types import TaskSpec

SHAPES = "RAW/DSET_synthetic_shapes"


def edited_task(demo_data: Path, tmp_path: Path, dataset: str, task: str, change) -> Path:
    """A copy of a demo task's dataset folder whose task file ``change`` edits; returns the task file."""
    import shutil

    target = tmp_path / "data" / "RAW" / f"DSET_{dataset}"
    shutil.copytree(demo_data / "RAW" / f"DSET_{dataset}", target)
    path = target / f"TASK_{task}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def first(data: dict, split: str = "train_samples") -> dict:
    return next(iter(data[split].values()))


# -- task files ----------------------------------------------------------------------------------


def test_demo_tasks_of_every_type_are_mml_task_files(demo_data):
    factory = TaskStructFactory(demo_data)
    expected = {"sk_digits_multilabel": ("multilabel_classification", 10, "classes", 16),
                "shapes_area": ("regression", 2, "value", 32), "shapes_seg": ("semantic_segmentation", 4, "mask", 32)}
    for name, (task_type, classes, modality, side) in expected.items():
        struct = factory.get_by_name(name)
        assert (struct.task_type, struct.num_classes, struct.sizes["max_height"]) == (task_type, classes, side)
        assert set(struct.modalities) == {"image", modality}
        assert factory.task_type(name) == task_type and factory.num_folds(name) == 5
    seg = read_task_file(factory.task_file("shapes_seg"))
    assert seg.class_occ["background"] == len(seg.train_samples) and seg.modalities["mask"] == ".png; "
    assert (factory.task_file("shapes_seg").parent / first(seg.to_json())["mask"]).is_file()
    area = read_task_file(factory.task_file("shapes_area"))
    assert all(0 < s["value"] < 1 for s in area.train_samples.values()) and area.class_occ == {}


BAD_TARGETS = {
    "label outside the class list": (
        "sklearn_digits", "sk_digits_multilabel", lambda d: first(d).update(classes=[3, 12]),
        r"sample 'grid_\d+': label\(s\) \[12\] are not in idx_to_class \(\[0, 1, .*9\]\)\. Fix the entry",
    ),
    "value that is not a number": (
        "synthetic_shapes", "shapes_area", lambda d: first(d, "test_samples").update(value="n/a"),
        r"sample 'scene_\d+': 'value' must be a finite number, got 'n/a' \(str\)\. Fix the entry",
    ),
    "soft labels of the wrong length": (
        "sklearn_digits", "sk_digits_multilabel",
        lambda d: (d.update(modalities={"image": ".png; ", "soft_classes": ""}),
                   [s.update(soft_classes=[0.5] * 10) for s in d["train_samples"].values()],
                   [s.update(soft_classes=[0.5] * 10) for s in d["test_samples"].values()],
                   first(d).update(soft_classes=[1.0, 0.0])),
        r"'soft_classes' must list 10 values in \[0, 1\] \(one per class\), got \[1.0, 0.0\]",
    ),
    "sample without its target": (
        "synthetic_shapes", "shapes_seg", lambda d: first(d).pop("mask"),
        r"sample 'scene_\d+' has no 'mask' entry, which every labelled sample of a semantic_segmentation task needs",
    ),
    "mask value keys beyond uint8": (
        "synthetic_shapes", "shapes_seg", lambda d: d["idx_to_class"].update({"300": "other"}),
        r"a segmentation task's idx_to_class keys are mask values 0..254",
    ),
    "unknown task type": (
        "synthetic_shapes", "shapes_area", lambda d: d.update(task_type="detection"),
        r"has task_type 'detection'; mml_core trains classification, multilabel_classification, regression, "
        r"semantic_segmentation",
    ),
    # main's checks of folds and splits hold for every type
    "test sample in training": (
        "synthetic_shapes", "shapes_seg",
        lambda d: d["test_samples"].update({next(iter(d["train_samples"])): first(d)}),
        r"1 test sample id\(s\) are also training samples",
    ),
    "empty fold": (
        "sklearn_digits", "sk_digits_multilabel", lambda d: d["train_folds"][2].clear(),
        r"train_folds \[2\] are empty: training on such a fold has no validation data",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", BAD_TARGETS)
def test_bad_target_entries_name_task_sample_and_fix(demo_data, tmp_path, kind):
    dataset, task, change, message = BAD_TARGETS[kind]
    path = edited_task(demo_data, tmp_path, dataset, task, change)
    with pytest.raises(TaskFileError, match=message):
        read_task_file(path)
    with pytest.raises(TaskFileError, match=f"Task '{task}'"):
        TaskStructFactory(tmp_path / "data").num_folds(task)


# -- masks ----------------------------------------------------------------------------------------


def write_png(path: Path, array: np.ndarray) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path.name


def test_masks_map_raw_values_to_classes_and_refuse_other_values_and_sizes(tmp_path):
    from mml_core.tasks.masks import MaskReader
    from mml_core.tasks.types import EMPTY_MASK_TOKEN

    # MML: idx_to_class keys are raw mask values; several may name one class; 255 stays ignored
    reader = MaskReader({0: "background", 128: "polyp", 200: "polyp", 64: "tool"}, "endo")
    raw = np.array([[0, 64, 128], [200, 255, 0]], dtype=np.uint8)
    write_png(tmp_path / "m.png", raw)
    assert reader.read(tmp_path, "m.png", (2, 3), "s1").tolist() == [[0, 1, 2], [2, 255, 0]]
    assert reader.read(tmp_path, EMPTY_MASK_TOKEN, (2, 2), "s1").tolist() == [[0, 0], [0, 0]]
    with pytest.raises(TaskFileError, match=r"Task 'endo', sample 's1': mask .*m.png is 2x3 \(HxW\) but its image is 3x3"):
        reader.read(tmp_path, "m.png", (3, 3), "s1")
    write_png(tmp_path / "bad.png", np.array([[0, 7], [300 % 256, 64]], dtype=np.uint8))
    with pytest.raises(TaskFileError, match=r"holds value\(s\) \[7, 44\] that idx_to_class \(\[0, 64, 128, 200\]\) does not name"):
        reader.read(tmp_path, "bad.png", (2, 2), "s2")


def test_mask_sizes_are_checked_from_headers_before_any_training(demo_data, tmp_path):
    from mml_core.tasks.masks import check_sample_files

    path = edited_task(demo_data, tmp_path, "synthetic_shapes", "shapes_seg", lambda d: None)
    desc = read_task_file(path)
    check_sample_files(desc, path.parent)
    sample_id, sample = next(iter(desc.test_samples.items()))
    write_png(path.parent / sample["mask"], np.zeros((30, 32), np.uint8))
    with pytest.raises(TaskFileError, match=rf"'{sample_id}' \(mask masks/{sample_id}.png is 30x32, image 32x32\)"):
        check_sample_files(desc, path.parent)


# -- data: targets and transforms -------------------------------------------------------------------


def test_targets_per_type(demo_data):
    from mml_core.data.targets import TaskTargets

    ml = TaskTargets("multilabel_classification", {0: "a", 1: "b", 2: "c"}, {"classes": ""})
    assert ml.label({"classes": [0, 2]}).tolist() == [1, 0, 1] and ml.label({}).tolist() == [-1, -1, -1]
    soft = TaskTargets("multilabel_classification", {0: "a", 1: "b"}, {"soft_classes": ""})
    assert soft.label({"soft_classes": [0.25, 0.75]}).tolist() == [0.25, 0.75]
    reg = TaskTargets("regression", {0: "min", 1: "max"}, {"value": ""})
    assert reg.label({"value": 0.5}).tolist() == [0.5] and np.isnan(reg.label({})[0])
    assert TaskTargets().label({"class": 3}) == 3 and TaskTargets().label({}) == -1


@pytest.mark.parametrize(
    "backend, pipeline",
    [("albumentations", [{"name": "HorizontalFlip", "p": 1.0}, {"name": "RandomBrightnessContrast", "p": 1.0}]),
     ("torchvision", [{"name": "RandomHorizontalFlip", "p": 1.0}, {"name": "ColorJitter", "brightness": 0.5}])],
)  # fmt: skip
def test_augmentation_moves_masks_with_images_and_leaves_their_values(backend, pipeline):
    from mml_core.data.transforms import ImagePipeline, resize_to

    image = np.zeros((4, 6, 3), np.uint8)
    image[:, :2] = 200
    mask = np.zeros((4, 6), np.uint8)
    mask[:, :2] = 3
    mask[0, 0] = 255
    augment = ImagePipeline.augmented(backend, pipeline, fixed=resize_to(8, 12))
    prepared = augment.prepare(image, mask)
    assert prepared[1].shape == (8, 12) and set(np.unique(prepared[1])) == {0, 3, 255}  # nearest: no new values
    tensor, target = augment.finish(*prepared[:1], seed=7, mask=prepared[1])
    assert target.dtype == torch.int64 and target.shape == (8, 12)
    assert (target[2:, -4:] == 3).all() and (target[:, :4] == 0).all() and (target[:2, -2:] == 255).all()  # flipped together
    assert tensor[0, :, -4:].mean() > tensor[0, :, :4].mean()
    again, target_again = augment.finish(*prepared[:1], seed=7, mask=prepared[1])
    assert torch.equal(again, tensor) and torch.equal(target_again, target)


def test_preprocessing_pipeline_takes_the_mask_along():
    from mml_core.data.transforms import preprocessing_pipeline

    transform = preprocessing_pipeline([{"name": "Resize", "height": 16, "width": 16}])
    image, mask = transform(np.zeros((8, 8, 3), np.uint8), np.eye(8, dtype=np.uint8) * 2)
    assert image.shape == (16, 16, 3) and mask.shape == (16, 16) and set(np.unique(mask)) == {0, 2}
    assert transform(np.zeros((8, 8, 3), np.uint8), None)[1] is None


def test_segmentation_dataset_reads_masks_and_refuses_a_mask_of_another_size(demo_data, tmp_path):
    from mml_core.data.loaders import split_datasets
    from mml_core.data.transforms import ImagePipeline

    path = edited_task(demo_data, tmp_path, "synthetic_shapes", "shapes_seg", lambda d: None)
    desc = read_task_file(path)
    datasets = split_datasets(desc, path.parent, {"train": ImagePipeline(), "eval": ImagePipeline()}, 0, 0, cache=True)
    image, mask, index = datasets["train"][0]
    assert image.shape == (3, 32, 32) and mask.shape == (32, 32) and mask.dtype == torch.int64
    assert set(mask.unique().tolist()) <= {0, 1, 2, 3} and datasets["train"].cached_masks[0].shape == (32, 32)
    sample_id = datasets["test"].ids[0]
    write_png(path.parent / desc.test_samples[sample_id]["mask"], np.zeros((16, 16), np.uint8))
    with pytest.raises(TaskFileError, match=rf"sample '{sample_id}': mask .* is 16x16 \(HxW\) but its image is 32x32"):
        datasets["test"][0]


# -- losses, metrics, networks ---------------------------------------------------------------------


def loss_cfg(**changes):
    return {**load_config().loss, **changes}


def test_each_type_gets_its_loss_group_with_mml_class_weights(caplog):
    from segmentation_models_pytorch.losses import DiceLoss

    from mml_core.models.losses import DiceCELoss, task_loss

    cfg = dict(load_config()["loss"])
    bce = task_loss(cfg, "multilabel_classification", [10, 5, 20], balanced=False)
    assert isinstance(bce, torch.nn.BCEWithLogitsLoss) and bce.weight.tolist() == [2.0, 4.0, 1.0]
    with caplog.at_level(logging.WARNING):
        huber = task_loss(cfg, "regression", [], balanced=False)
    assert isinstance(huber, torch.nn.HuberLoss) and "takes no class weights" not in caplog.text
    dice = task_loss(cfg, "semantic_segmentation", [4, 2], balanced=False)
    assert isinstance(dice, DiceLoss) and dice.ignore_index == 255 and dice.mode == "multiclass"
    ce = task_loss({**cfg, "seg": {"_target_": "torch.nn.CrossEntropyLoss"}}, "semantic_segmentation", [4, 2], False)
    assert ce.ignore_index == 255 and ce.weight.tolist() == [1.0, 2.0]
    both = task_loss({**cfg, "seg": {"_target_": "mml_core.models.losses.DiceCELoss"}}, "semantic_segmentation", [1, 1], False)
    assert isinstance(both, DiceCELoss)
    logits, target = torch.randn(2, 2, 4, 4), torch.randint(0, 2, (2, 4, 4))
    target[0, 0, 0] = 255
    assert both(logits, target) == pytest.approx(float(both.dice(logits, target) + both.ce(logits, target)))


def spec(task_type: str, n: int = 3) -> TaskSpec:
    names = ["min", "max"] if task_type == "regression" else [f"c {k}/x" for k in range(n)]
    return TaskSpec("t", task_type, tuple(names))


def test_metrics_of_each_type_have_stable_names_and_sensible_values():
    from mml_core.models.metrics import classwise_test_metrics, metric_inputs, test_metrics

    cases = {
        "multilabel_classification": (torch.tensor([[4.0, -4, 4], [-4, 4, -4]] * 4), torch.tensor([[1.0, 0, 1], [0, 1, 0]] * 4)),
        "regression": (torch.arange(8.0).reshape(8, 1), torch.arange(8.0).reshape(8, 1)),
        "semantic_segmentation": (torch.nn.functional.one_hot(torch.arange(3).repeat(2, 4, 1), 3).permute(0, 3, 1, 2).float(),
                                  torch.arange(3).repeat(2, 4, 1)),
    }  # fmt: skip
    expected = {
        "multilabel_classification": {"auroc", "f1", "average_precision", "ranking_ap", "coverage_error"},
        "regression": {"mae", "mse", "r2", "pearson", "spearman"},
        "semantic_segmentation": {"dice", "iou"},
    }
    for task_type, (outputs, targets) in cases.items():
        metrics = test_metrics(spec(task_type))
        metrics.update(*metric_inputs(task_type, outputs, targets))
        values = {k: float(v) for k, v in metrics.compute().items()}
        assert set(values) == expected[task_type]
        perfect = {"mae": 0.0, "mse": 0.0, "coverage_error": 1.5}  # rows of 2 and 1 true labels
        for name, value in values.items():
            assert value == pytest.approx(perfect.get(name, 1.0)), (task_type, name)
        classwise = classwise_test_metrics(spec(task_type))
        if len(classwise):
            classwise.update(*metric_inputs(task_type, outputs, targets))
            names = set(classwise.compute())
            base = "auroc" if task_type == "multilabel_classification" else "dice"
            assert {f"{base}_c_0_x", f"{base}_c_2_x"} <= names  # class names made safe for metric keys


def test_arch_serves_the_types_mml_lets_it_serve():
    from mml_core.models.archs import check_task_types

    timm = load_config()
    smp = load_config({"arch": {"arch": "unet", "encoder": "resnet18"}})
    check_task_types(timm, {"a": "classification", "b": "multilabel_classification", "c": "regression"})
    check_task_types(smp, {"a": "classification", "b": "multilabel_classification", "c": "semantic_segmentation"})
    with pytest.raises(MisconfigurationError, match=r"Task 'seg' is semantic_segmentation, which arch.name=small_cnn .*cannot "
                       r"serve.*--config 'arch=\{arch: unet, encoder: resnet18\}'"):
        check_task_types(timm, {"seg": "semantic_segmentation"})
    with pytest.raises(MisconfigurationError, match=r"Task 'reg' is regression, which arch.arch=unet with encoder resnet18 "
                       r"\(segmentation_models_pytorch, MML's arch=smp\) cannot serve"):
        check_task_types(smp, {"reg": "regression"})
    with pytest.raises(MisconfigurationError, match=r"sampling.balanced .* task 'ml' is multilabel_classification"):
        check_task_types(load_config({"sampling": {"balanced": True}}), {"ml": "multilabel_classification"})


def test_heads_per_type_on_timm_and_smp_networks():
    from mml_core.models.backbones import SmallCNN
    from mml_core.models.network import MultiTaskNetwork
    from mml_core.models.smp import build_smp_network

    net = MultiTaskNetwork(SmallCNN(), [spec("classification"), spec("multilabel_classification", 4), spec("regression")])
    x = torch.randn(2, 3, 8, 8)
    assert [tuple(net(x, i).shape) for i in range(3)] == [(2, 3), (2, 4), (2, 1)]
    arch = {"arch": "unet", "encoder": "resnet18", "pretrained": False, "weights": None, "drop_rate": 0.1}
    seg = build_smp_network(arch, [spec("semantic_segmentation", 4), spec("multilabel_classification", 5)])
    x = torch.randn(2, 3, 32, 64)
    assert tuple(seg(x, 0).shape) == (2, 4, 32, 64) and tuple(seg(x, 1).shape) == (2, 5)
    assert tuple(seg(torch.randn(2, 3, 30, 40), 0).shape) == (2, 4, 30, 40)  # smp's U-Net takes any size
    fpn = build_smp_network({**arch, "arch": "fpn"}, [spec("semantic_segmentation")])
    with pytest.raises(MisconfigurationError, match=r"height=30.*multiples of 32: add e.g. \{name: PadIfNeeded"):
        fpn(torch.randn(2, 3, 30, 32), 0)
    with pytest.raises(MisconfigurationError, match=r"Unknown arch.arch 'unett': segmentation_models_pytorch has unet, "):
        build_smp_network({**arch, "arch": "unett"}, [spec("semantic_segmentation")])
    with pytest.raises(MisconfigurationError, match=r"Unknown arch.encoder 'resnet19'"):
        build_smp_network({**arch, "encoder": "resnet19"}, [spec("semantic_segmentation")])


def test_smp_encoder_weights_come_from_a_file_never_a_download(tmp_path):
    import timm
    from safetensors.torch import save_file

    from mml_core.models.smp import build_smp_network

    source = timm.create_model("resnet18", num_classes=1000)
    save_file(source.state_dict(), str(tmp_path / "resnet18.safetensors"))
    arch = {"arch": "unet", "encoder": "tu-resnet18", "pretrained": True, "weights": str(tmp_path / "resnet18.safetensors")}
    net = build_smp_network(arch, [spec("semantic_segmentation")])
    assert torch.equal(net.backbone.encoder.model.conv1.weight, source.conv1.weight)
    # this project's model.pt of an smp network carries its encoder under backbone.encoder
    torch.save({"state_dict": net.state_dict()}, tmp_path / "model.pt")
    again = build_smp_network({**arch, "weights": str(tmp_path / "model.pt")}, [spec("semantic_segmentation")])
    assert torch.equal(again.backbone.encoder.model.conv1.weight, source.conv1.weight)
    torch.save({"state_dict": timm.create_model("resnet50").state_dict()}, tmp_path / "other.pt")
    with pytest.raises(MisconfigurationError, match=r"do not fit the encoder.*same architecture as arch.encoder"):
        build_smp_network({**arch, "weights": str(tmp_path / "other.pt")}, [spec("semantic_segmentation")])


def test_pretrained_smp_encoders_are_checked_while_planning(tmp_path, monkeypatch):
    from mml_core.models.pretrained import check_weights

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    base = {"name": "small_cnn", "pretrained": True, "weights": None, "arch": "unet"}
    with pytest.raises(MisconfigurationError, match=r"encoder 'resnet18', whose weights smp would download"):
        check_weights({**base, "encoder": "resnet18"})
    with pytest.raises(MisconfigurationError, match=r"no weights of timm model 'resnet18' are on this machine"):
        check_weights({**base, "encoder": "tu-resnet18"})
    with pytest.raises(MisconfigurationError, match=r"MML's arch=smp names weights such as 'imagenet'"):
        check_weights({**base, "encoder": "tu-resnet18", "weights": "imagenet"})


# -- predictions and plots ---------------------------------------------------------------------------


def test_predictions_are_encoded_per_type_and_masks_stay_small(tmp_path):
    from mml_core.models.inference import encode_outputs, encode_targets
    from mml_core.results.predictions import pooled_arrays, read_predictions, write_predictions

    logits = torch.randn(3, 4, 64, 64)
    masks = encode_outputs("semantic_segmentation", logits)
    assert masks.dtype == np.uint8 and masks.shape == (3, 64, 64) and (masks == logits.argmax(1).numpy()).all()
    assert encode_outputs("regression", torch.ones(3, 1)).shape == (3,)
    assert encode_targets("multilabel_classification", torch.ones(3, 2)).dtype == np.float32
    entry = {"masks": masks, "targets": masks, "sample_ids": ["a", "b", "c"], "examples": np.zeros((2, 64, 64, 3), np.uint8)}
    path = write_predictions(tmp_path / "p.npz", {"test": entry}, "semantic_segmentation")
    assert path.stat().st_size < logits.numel()  # far below the float logits (4 bytes each)
    back = read_predictions(path)["test"]
    assert back["masks"].dtype == np.uint8 and back["examples"].shape == (2, 64, 64, 3)
    assert str(np.load(path)["task_type"]) == "semantic_segmentation"
    pooled = pooled_arrays([path, path], ("targets", "masks"))
    assert pooled["masks"].shape == (6, 64, 64)


def test_plots_of_each_type(tmp_path):
    from mml_core.results import outputs
    from mml_core.results.predictions import write_predictions
    from mml_core.results.type_plots import plot_test_predictions

    rng = np.random.default_rng(0)
    truth = (rng.random((40, 3)) > 0.5).astype(np.float32)
    files = {
        "multilabel_classification": {"logits": truth + rng.normal(0, 0.5, truth.shape), "targets": truth},
        "regression": {"values": np.linspace(0, 1, 40) + rng.normal(0, 0.05, 40), "targets": np.linspace(0, 1, 40)},
        "semantic_segmentation": {"masks": rng.integers(0, 3, (5, 8, 8)), "targets": rng.integers(0, 3, (5, 8, 8)),
                                  "examples": rng.integers(0, 255, (4, 8, 8, 3))},
    }  # fmt: skip
    folders = {"multilabel_classification": outputs.ROC_CURVES_DIR, "regression": outputs.REGRESSION_SCATTER_DIR,
               "semantic_segmentation": outputs.SEGMENTATION_OVERLAYS_DIR}  # fmt: skip
    for task_type, entry in files.items():
        n = len(entry["targets"])
        path = write_predictions(tmp_path / f"{task_type}.npz", {"test": {**entry, "sample_ids": [str(k) for k in range(n)]}},
                                 task_type)  # fmt: skip
        out = plot_test_predictions(tmp_path, "t", task_type, [path], ["a", "b", "c"])
        assert out == outputs.task_plot(tmp_path, folders[task_type], "t") and out.stat().st_size > 10_000


def test_mml_pp_writes_masks_beside_images_with_their_raw_values(demo_data, tmp_path):
    from PIL import Image

    from mml_core.data.preprocess import preprocess_task
    from mml_core.tasks.masks import check_sample_files

    raw = edited_task(demo_data, tmp_path, "synthetic_shapes", "shapes_seg", lambda d: None)
    path = preprocess_task(raw, "size48", [{"name": "Resize", "height": 48, "width": 48}])
    desc = read_task_file(path)
    assert path == tmp_path / "data/PREPROCESSED/size48/DSET_synthetic_shapes/TASK_shapes_seg.json"
    assert desc.sizes == {"min_height": 48, "max_height": 48, "min_width": 48, "max_width": 48}
    check_sample_files(desc, path.parent)
    sample = first(desc.to_json())
    with Image.open(path.parent / sample["mask"]) as mask:
        assert mask.size == (48, 48) and set(np.unique(np.array(mask))) <= {0, 1, 2, 3}


@pytest.mark.parametrize("kind", ["roc_curves", "regression_scatter", "segmentation_overlays"])
def test_captions_of_the_type_plots_render_as_snakemake_does(kind):
    from test_results import test_captions_render_as_snakemake_does as render

    render(kind)


def test_finish_exp_plots_import_neither_torch_nor_matplotlib_up_front():
    import subprocess
    import sys

    code = ("import sys, mml_core.results.type_plots, mml_core.results.training_summary; "
            "print(sorted(m for m in ('matplotlib', 'torch', 'sklearn') if m in sys.modules))")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


@pytest.mark.parametrize("experiment", ["multilabel", "regression", "segmentation"])
def test_example_experiments_compose_the_same_through_mml_snake(experiment):
    from mml_core.config.compose import compose_config

    path = REPO / "config" / f"{experiment}.yaml"
    assert compose_config([], [path]) == load_config(configfiles=[path])
    # MML's way: the task list, architecture and loss as group options
    groups = {"multilabel": [], "regression": [],
              "segmentation": ["arch=smp", "arch.encoder=resnet18", "arch.pretrained=false", "loss/seg=dice_ce"]}
    cfg = compose_config([f"tasks={experiment}", *groups[experiment], "mode.cv=false"])
    expected = load_config(configfiles=[path])
    for key in ("task_list", "pivot", "arch", "mode"):
        assert cfg[key] == expected[key], key
    assert cfg.loss.seg._target_ == expected.loss.seg._target_


def test_mml_arch_smp_and_loss_options_compose_with_mmls_values(caplog):
    from mml_core.config.compose import compose_config

    cfg = compose_config(["arch=smp", "arch.weights=imagenet", "loss/seg=dice", "loss/mlcls=ce",
                          "arch._target_=mml.core.models.smp.SMPGenericModel"])
    assert (cfg.arch.arch, cfg.arch.encoder, cfg.arch.pretrained, cfg.arch.weights) == ("unet", "tu-resnet34", True, None)
    assert cfg.loss.seg == {"_target_": "segmentation_models_pytorch.losses.DiceLoss", "mode": "multiclass",
                            "ignore_index": 255}
    assert cfg.loss.mlcls._target_ == "torch.nn.CrossEntropyLoss" and "Ignoring MML key arch._target_" in caplog.text
    # MML's default metric lists are accepted (and dropped); others name the fix
    mml_seg = {"_target_": "torchmetrics.classification.Dice", "average": "macro", "mdmc_average": "samplewise",
               "num_classes": 0, "ignore_index": 255}
    assert "seg" not in load_config({"metrics": {"seg": [mml_seg]}}).metrics
    with pytest.raises(ConfigError, match="MML key metrics.reg=.* is not supported by mml_core: each task type's metrics"):
        load_config({"metrics": {"reg": [{"_target_": "torchmetrics.regression.MeanAbsoluteError"}]}})
