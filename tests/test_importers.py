"""Importers and the ``python -m mml_core.tasks`` command line, on small inputs built on the fly."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mml_core.tasks import TaskStructFactory, read_task_file
from mml_core.tasks.__main__ import main
from mml_core.tasks.description import check_files_exist
from mml_core.tasks.images import open_image
from mml_core.tasks.importers import DataImportError, import_image_folder, import_npz

# class -> (number of images, grey value): constant images make the expected stats exact
CLASSES = {"benign": (12, 0), "malignant": (8, 255)}


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """``src/<class>/`` with JPEG, grey and RGBA PNG images of two sizes, a sub-folder and a stray file."""
    src = tmp_path / "src"
    for cls, (count, grey) in CLASSES.items():
        (src / cls / "more").mkdir(parents=True)
        for i in range(count):
            size = (10, 12) if i % 2 else (6, 12)
            if i % 3 == 0:
                img, name = Image.fromarray(np.full(size, grey, np.uint8)), f"img{i}.png"
            elif i % 3 == 1:
                img, name = Image.fromarray(np.full((*size, 4), grey, np.uint8)), f"more/img{i}.png"
            else:
                img, name = Image.fromarray(np.full((*size, 3), grey, np.uint8)), f"img{i}.jpg"
            img.save(src / cls / name)
    (src / "benign" / "README.txt").write_text("not an image")
    (src / "benign" / ".DS_Store").write_text("hidden")
    return src


def test_image_folder_becomes_an_mml_task(image_folder, tmp_path):
    data = tmp_path / "data"
    path = import_image_folder(image_folder, data, "lesions", dataset="derm", n_folds=3, test_fraction=0.25)
    assert path == data / "RAW/DSET_derm/TASK_lesions.json"
    raw = json.loads(path.read_text())
    # 9 black and 6 white training images: mean 6/15, std sqrt(0.4 - 0.4**2)
    assert raw["means"] == pytest.approx([0.4] * 3, abs=0.01) and raw["stds"] == pytest.approx(
        [0.49] * 3, abs=0.01
    )
    assert raw["sizes"] == [6, 10, 12, 12]
    assert raw["modalities"] == {"image": ".png; ", "class": ""} and raw["idx_to_class"] == {
        "0": "benign",
        "1": "malignant",
    }
    desc = read_task_file(path)
    assert len(desc.test_samples) == 5 and len(desc.train_samples) == 15
    assert desc.class_occ == {"benign": 9, "malignant": 6}
    assert "benign/more/img1" in {**desc.train_samples, **desc.test_samples}
    assert len(desc.train_folds) == 3 and sorted(i for f in desc.train_folds for i in f) == sorted(
        desc.train_samples
    )
    for fold in desc.train_folds:  # stratified: 3 benign and 2 malignant per fold
        assert Counter(desc.train_samples[i]["class"] for i in fold) == Counter({0: 3, 1: 2})
    sample = desc.train_samples[desc.train_folds[0][0]]
    assert sample["image"].startswith("lesions/") and sample["image"].endswith(".png")
    check_files_exist(desc, path.parent)  # sample paths are relative to the dataset folder
    with Image.open(path.parent / sample["image"]) as img:
        assert img.format == "PNG" and img.mode in ("L", "RGB")
    struct = TaskStructFactory(data).get_by_name("lesions+identity")
    assert struct.num_classes == 2 and struct.num_samples == 15
    # the same seed gives the same task
    import_image_folder(
        image_folder, data, "lesions", dataset="derm", n_folds=3, test_fraction=0.25, overwrite=True
    )
    assert read_task_file(path).train_folds == desc.train_folds


def gradient(scale: int) -> np.ndarray:
    """A 6x8 image with 48 distinct 8-bit values from 0 to 255, times ``scale``."""
    return np.rint(np.linspace(0, 255, 48)).astype(np.int64).reshape(6, 8) * scale


def test_16_bit_images_keep_their_information_on_import(tmp_path):
    # the same two classes as 8-bit PNGs, as full-range 16-bit PNGs (x257), as 12-bit data in 16-bit PNGs
    # (x16) and as float TIFFs: every import writes the same 8-bit images, with their 48 grey values
    written = {}
    for kind, (mode, scale, suffix) in {
        "8bit": ("L", 1, "png"), "16bit": ("I;16", 257, "png"), "12bit": ("I;16", 16, "png"),
        "float": ("F", 1, "tif"),
    }.items():  # fmt: skip
        src = tmp_path / kind
        for cls in ("dark", "bright"):
            (src / cls).mkdir(parents=True)
            for i in range(4):
                values = gradient(scale) if cls == "bright" else gradient(scale)[::-1]
                dtype = {"L": np.uint8, "I;16": np.uint16, "F": np.float32}[mode]
                Image.fromarray(values.astype(dtype), mode=mode if mode != "I;16" else None).save(
                    src / cls / f"{i}.{suffix}"
                )
        path = import_image_folder(src, tmp_path / "data", kind, n_folds=2, test_fraction=0)
        desc = read_task_file(path)
        sample = next(iter(desc.train_samples.values()))
        with Image.open(path.parent / sample["image"]) as img:
            assert img.mode == "L"
            written[kind] = np.asarray(img)
    assert len(np.unique(written["16bit"])) == 48
    for kind in ("16bit", "12bit", "float"):
        assert np.abs(written[kind].astype(int) - written["8bit"]).max() <= 1, kind


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("1", "L"), ("LA", "L"), ("P", "RGB"), ("RGBA", "RGB"), ("CMYK", "RGB"), ("I", "L"), ("F", "L")],
)
def test_every_image_mode_opens_as_8_bit_grey_or_rgb(tmp_path, mode, expected):
    path = tmp_path / "x.tif"
    Image.new(mode, (5, 4)).save(path)
    assert open_image(path).mode == expected


def test_constant_and_nan_high_bit_depth_images_become_black(tmp_path):
    values = np.full((3, 3), 7.0, np.float32)
    values[0, 0] = np.nan
    Image.fromarray(values).save(tmp_path / "x.tif")
    assert np.asarray(open_image(tmp_path / "x.tif")).max() == 0


def npz_arrays(rgb: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 30), ("val", 9), ("test", 12)):
        shape = (n, 7, 5, 3) if rgb else (n, 7, 5)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 3).reshape(n, 1)
    return arrays


@pytest.mark.parametrize("rgb", [False, True])
def test_medmnist_npz_becomes_an_mml_task(tmp_path, rgb):
    arrays = npz_arrays(rgb)
    np.savez(tmp_path / "organ.npz", **arrays)
    path = import_npz(
        tmp_path / "organ.npz", tmp_path / "data", "organs", n_folds=3, class_names=["liver", "lung", "bone"]
    )
    desc = read_task_file(path)
    assert path.parent.name == "DSET_organs" and desc.idx_to_class == {0: "liver", 1: "lung", 2: "bone"}
    # val joins the training pool, test stays the test split
    assert len(desc.train_samples) == 39 and {i.split("_")[0] for i in desc.train_samples} == {"train", "val"}
    assert sorted(desc.test_samples) == [f"test_{i:02d}" for i in range(12)]
    assert desc.test_samples["test_04"]["class"] == 1 and desc.class_occ == {
        "liver": 13,
        "lung": 13,
        "bone": 13,
    }
    assert [len(f) for f in desc.train_folds] == [13, 13, 13]
    assert desc.sizes == {"min_height": 7, "max_height": 7, "min_width": 5, "max_width": 5}
    with Image.open(path.parent / desc.test_samples["test_04"]["image"]) as img:
        assert np.array_equal(np.asarray(img), arrays["test_images"][4])
    check_files_exist(desc, path.parent)


IMPORT_ERRORS = {
    "one class": (
        lambda src, data: import_image_folder(src / "benign", data, "x"),
        r"has 1 class sub-folder\(s\); a classification task needs at least 2\. Put the images of each class",
    ),
    "too few per fold": (
        lambda src, data: import_image_folder(src, data, "x", n_folds=7, test_fraction=0.25),
        r"Too few images per class: 'malignant' \(6\); each class needs at least 7\. .*lower --n-folds",
    ),
    "bad name": (
        lambda src, data: import_image_folder(src, data, "a+b"),
        r"The name name 'a\+b' is empty or contains \['\+'\]; .*Choose another --name",
    ),
    "one fold": (
        lambda src, data: import_image_folder(src, data, "x", n_folds=1),
        r"--n-folds must be at least 2 \(MML's minimum\), got 1",
    ),
    "test fraction": (
        lambda src, data: import_image_folder(src, data, "x", test_fraction=1.0),
        r"--test-fraction must be in \[0, 1\), got 1.0",
    ),
}


@pytest.mark.parametrize("kind", IMPORT_ERRORS)
def test_bad_image_folders_name_the_problem_and_the_fix(image_folder, tmp_path, kind):
    run, message = IMPORT_ERRORS[kind]
    with pytest.raises(DataImportError, match=message):
        run(image_folder, tmp_path / "data")
    assert not (tmp_path / "data" / "RAW").exists() or not list((tmp_path / "data").rglob("TASK_*.json"))


def test_existing_tasks_are_not_replaced_silently(image_folder, tmp_path):
    data = tmp_path / "data"
    import_image_folder(image_folder, data, "lesions", n_folds=2)
    with pytest.raises(
        DataImportError, match=r"Task 'lesions' already exists at .*TASK_lesions.json\. .*--overwrite"
    ):
        import_image_folder(image_folder, data, "lesions", n_folds=2)
    with pytest.raises(DataImportError, match=r"already exists .* \(task names are unique in a data root\)"):
        import_image_folder(image_folder, data, "lesions", dataset="other", n_folds=2, overwrite=True)


def test_unreadable_image_is_named(image_folder, tmp_path):
    (image_folder / "benign" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(
        DataImportError, match=r"Cannot read image .*benign/broken.png .*Remove or repair the file"
    ):
        import_image_folder(image_folder, tmp_path / "data", "x", n_folds=2)


NPZ_ERRORS = {
    "missing arrays": (
        lambda a: a.pop("val_labels"),
        (
            r"lacks the array\(s\) val_labels \(has .*\)\. A MedMNIST-style file holds train_images, "
            r".*save the missing"
        ),
    ),
    "float images": (
        lambda a: a.update(train_images=a["train_images"] / 255.0),
        r"train_images has dtype float64; expected uint8 .*astype\('uint8'\)",
    ),
    "volumes": (
        lambda a: a.update(test_images=np.zeros((12, 4, 4, 4), np.uint8)),
        (
            r"test_images has shape \(12, 4, 4, 4\); expected \(N, H, W\) or \(N, H, W, 1\|3\)"
            r".*3D volumes are not"
        ),
    ),
    "single class": (
        lambda a: a.update(
            {f"{s}_labels": np.zeros((len(a[f"{s}_images"]), 1), int) for s in ("train", "val", "test")}
        ),
        r"holds a single class \(0\); a classification task needs at least 2",
    ),
    "multi-label": (
        lambda a: a.update(val_labels=np.zeros((9, 14), int)),
        (
            r"val_labels has shape \(9, 14\) .*one integer class index per image"
            r".*Multi-label targets are not supported"
        ),
    ),
}


@pytest.mark.parametrize("kind", NPZ_ERRORS)
def test_bad_npz_files_name_the_problem_and_the_fix(tmp_path, kind):
    change, message = NPZ_ERRORS[kind]
    arrays = npz_arrays()
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataImportError, match=message):
        import_npz(tmp_path / "bad.npz", tmp_path / "data", "x", n_folds=3)


def test_npz_class_names_must_cover_every_index(tmp_path):
    np.savez(tmp_path / "m.npz", **npz_arrays())
    with pytest.raises(
        DataImportError, match=r"uses class indices 0\.\.2 but --classes names 2; name every class"
    ):
        import_npz(tmp_path / "m.npz", tmp_path / "data", "x", class_names=["a", "b"])


def test_command_line_imports_and_lists_tasks(image_folder, tmp_path, capsys, caplog):
    data = tmp_path / "data"
    np.savez(tmp_path / "m.npz", **npz_arrays())
    folder_args = ["--data-dir", str(data), "--name", "lesions", "--n-folds", "2", "--test-fraction", "0"]
    assert main(["import-folder", str(image_folder), *folder_args]) == 0
    assert read_task_file(data / "RAW/DSET_lesions/TASK_lesions.json").test_samples == {}
    assert main(["import-npz", str(tmp_path / "m.npz"), "--data-dir", str(data), "--name", "organs",
                 "--dataset", "medmnist", "--classes", "liver,lung,bone", "--n-folds", "3"]) == 0  # fmt: skip
    assert read_task_file(data / "RAW/DSET_medmnist/TASK_organs.json").idx_to_class[2] == "bone"
    capsys.readouterr()
    assert main(["list", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "task\tpreprocessing\ttask file",
        "lesions\tnone\tRAW/DSET_lesions/TASK_lesions.json",
        "organs\tnone\tRAW/DSET_medmnist/TASK_organs.json",
    ]
    with caplog.at_level(logging.ERROR):
        assert main(["import-folder", str(image_folder), "--data-dir", str(data), "--name", "lesions"]) == 1
    assert "Task 'lesions' already exists" in caplog.text


def test_module_entry_point_shows_usage():
    out = subprocess.run(
        [sys.executable, "-m", "mml_core.tasks", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "import-folder" in out and "import-npz" in out and "list" in out
