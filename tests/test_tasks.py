"""Task files in MML's format, MML data roots (RAW + PREPROCESSED), TaskStructFactory, demo tasks,
and the error message of every kind of bad task file."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mml_core.tasks import (
    TaskFileError,
    TaskNotFoundError,
    TaskStruct,
    TaskStructFactory,
    read_task_file,
    write_task_file,
)
from mml_core.tasks.demo import DIGITS_TASKS, N_FOLDS
from mml_core.tasks.description import MML_KEY_ORDER, check_files_exist
from mml_core.tasks.index import scan_task_files

# what MML's TaskDescription.to_json writes (ALL_TASK_DESCRIPTION_KEYS)
MML_KEYS = {
    "name", "task_type", "keywords", "modalities", "means", "stds", "sizes", "idx_to_class", "class_occ",
    "description", "creation_protocol", "reference", "url", "download", "license", "release",
    "unlabeled_samples", "train_folds", "train_samples", "test_samples",
}  # fmt: skip


def mml_task_file(folder: Path, size: int, mean: float) -> Path:
    """A task file exactly as ``mml create`` writes it (lists for means/stds/sizes, creation_protocol),
    with 12 PNG images of ``size`` x ``size`` in ``folder/images``: 3 folds of 3, a test split of 3."""
    (folder / "images").mkdir(parents=True)
    samples = {}
    for i in range(12):
        Image.fromarray(np.full((size, size, 3), 40 * (i % 2), np.uint8)).save(
            folder / "images" / f"s{i:02d}.png"
        )
        samples[f"s{i:02d}"] = {"image": f"images/s{i:02d}.png", "class": i % 2}
    data = {
        "name": "toy", "task_type": "classification", "keywords": ["medical"],
        "modalities": {"image": ".png; ", "class": ""},
        "means": [mean, mean, mean], "stds": [0.2, 0.2, 0.2], "sizes": [size, size, size, size],
        "idx_to_class": {"0": "healthy", "1": "sick"}, "class_occ": {"healthy": 5, "sick": 4},
        "description": "a toy task", "creation_protocol": "Started @ 01/01/2024 10:00:00; ",
        "reference": "", "url": "", "download": "", "license": "unknown", "release": "",
        "unlabeled_samples": {},
        "train_folds": [["s00", "s01", "s02"], ["s03", "s04", "s05"], ["s06", "s07", "s08"]],
        "train_samples": {k: samples[k] for k in list(samples)[:9]},
        "test_samples": {k: samples[k] for k in list(samples)[9:]},
    }  # fmt: skip
    path = folder / "TASK_toy.json"
    path.write_bytes(json.dumps(data).encode())  # compact, as MML's orjson writes it
    return path


@pytest.fixture
def mml_root(tmp_path: Path) -> Path:
    """A small MML data root: task ``toy`` raw (16 px) and preprocessed as ``size8`` (8 px, own images),
    plus the leftovers MML leaves beside task files (a tagged task file, a temp file)."""
    root = tmp_path / "mml_data"
    raw = mml_task_file(root / "RAW" / "DSET_toyset", size=16, mean=0.1)
    mml_task_file(root / "PREPROCESSED" / "size8" / "DSET_toyset", size=8, mean=0.3)
    shutil.copy(raw, raw.with_name("TASK_toy+nested?0.json"))
    (raw.parent / "temp.json").write_text("{}")
    return root


def test_scan_finds_raw_and_preprocessed_versions(mml_root):
    assert scan_task_files(mml_root) == {
        "toy": {
            "none": mml_root / "RAW/DSET_toyset/TASK_toy.json",
            "size8": mml_root / "PREPROCESSED/size8/DSET_toyset/TASK_toy.json",
        }
    }


def test_factory_reads_mml_files_relative_to_their_folder(mml_root, tmp_path):
    raw = TaskStructFactory(mml_root).create_task_struct("toy", return_ref=True)
    assert raw.means == {"r": 0.1, "g": 0.1, "b": 0.1} and raw.sizes["max_height"] == 16
    assert raw.num_classes == 2 and raw.num_samples == 9 and raw.class_occ == {"healthy": 5, "sick": 4}
    assert raw.preprocessed == "none" and raw.relative_root == "RAW/DSET_toyset/TASK_toy.json"
    assert raw.paths["dataset_root"] == mml_root / "RAW/DSET_toyset"

    factory = TaskStructFactory(mml_root, preprocessing="size8")
    pre = factory.create_task_struct("toy", return_ref=True)
    assert pre.sizes["max_width"] == 8 and pre.means["g"] == 0.3 and pre.preprocessed == "size8"
    assert pre.paths["dataset_root"] == mml_root / "PREPROCESSED/size8/DSET_toyset"
    # the preprocessed images exist only beside the preprocessed task file
    shutil.rmtree(mml_root / "RAW/DSET_toyset/images")
    check_files_exist(factory.load_description("toy"), pre.paths["dataset_root"])
    factory.dump(tmp_path / "tasks.json")
    assert TaskStruct.from_json(json.loads((tmp_path / "tasks.json").read_text())["toy"]) == pre


def test_missing_preprocessing_names_the_versions_and_the_fix(mml_root, demo_data):
    with pytest.raises(TaskNotFoundError) as err:
        TaskStructFactory(mml_root, preprocessing="size32").task_file("toy+identity")
    message = str(err.value)
    assert (
        "no version with preprocessing 'size32'" in message
        and "PREPROCESSED/size32/DSET_*/TASK_toy.json" in message
    )
    assert (
        "none (RAW), size8 (PREPROCESSED/size8)" in message
        and "Set preprocessing to one of none, size8" in message
    )
    # demo tasks exist only in RAW
    with pytest.raises(TaskNotFoundError, match=r"'sk_digits' has no version .*'size8'.*none \(RAW\)"):
        TaskStructFactory(demo_data, preprocessing="size8").task_file("sk_digits")


def test_training_scheduler_uses_an_mml_data_root_unchanged(mml_root, tmp_path, monkeypatch):
    from mml_core.config import load_config
    from mml_core.schedulers import TrainingScheduler

    monkeypatch.chdir(tmp_path)
    cfg = load_config({"data_dir": str(mml_root), "task_list": ["toy"], "pivot": {"name": "toy"}})
    scheduler = TrainingScheduler(cfg)
    assert scheduler.n_folds == 3 and scheduler.step_names[1:4] == [f"train_fold--toy_{f}" for f in range(3)]
    scheduler.prepare_exp()  # creates and checks every struct, including the image files
    assert json.loads((tmp_path / "results/default/tasks.json").read_text())["toy"]["num_samples"] == 9


def test_datasets_load_from_an_mml_data_root(mml_root):
    from mml_core.data.dataset import TaskSplitDataset, split_ids, split_samples
    from mml_core.data.transforms import ImagePipeline

    factory = TaskStructFactory(mml_root)
    struct = factory.get_by_name("toy")
    desc = factory.load_description("toy")
    ids, samples = split_ids(desc, fold=1), split_samples(desc)
    splits = {
        split: TaskSplitDataset(struct.paths["dataset_root"], samples[split], ids[split], ImagePipeline(), cache=True)
        for split in ids
    }
    assert (
        splits["val"].ids == ["s03", "s04", "s05"] and len(splits["train"]) == 6 and len(splits["test"]) == 3
    )
    assert [image.shape for image in splits["train"].cached] == [(16, 16, 3)] * 6


def test_written_files_use_mml_encoding_and_read_back(mml_root, tmp_path):
    desc = read_task_file(mml_root / "RAW/DSET_toyset/TASK_toy.json")
    path = write_task_file(desc, tmp_path / "TASK_toy.json")
    data = json.loads(path.read_text())
    assert tuple(data) == MML_KEY_ORDER and set(data) == MML_KEYS
    assert data["means"] == [0.1, 0.1, 0.1] and data["sizes"] == [16, 16, 16, 16]
    assert read_task_file(path) == desc


def test_files_of_earlier_mml_core_versions_are_read(mml_root):
    path = mml_root / "RAW/DSET_toyset/TASK_toy.json"
    data = json.loads(path.read_text())
    data["means"] = {"r": 0.5, "g": 0.4, "b": 0.3}
    data["sizes"] = {"min_height": 1, "max_height": 2, "min_width": 3, "max_width": 4}
    path.write_text(json.dumps(data))
    desc = read_task_file(path)
    assert desc.means == {"r": 0.5, "g": 0.4, "b": 0.3} and desc.sizes["min_width"] == 3


def test_duplicate_task_names_warn_and_keep_the_first(mml_root, caplog):
    other = mml_root / "RAW/DSET_zzz/TASK_toy.json"
    other.parent.mkdir()
    shutil.copy(mml_root / "RAW/DSET_toyset/TASK_toy.json", other)
    with caplog.at_level(logging.WARNING):
        index = scan_task_files(mml_root)
    assert index["toy"]["none"] == mml_root / "RAW/DSET_toyset/TASK_toy.json"
    assert "Task toy exists twice" in caplog.text and str(other) in caplog.text


def break_file(path: Path, change) -> Path:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


BAD_FILES = {
    "missing key": (
        lambda d: d.pop("train_folds"),
        r"Task 'toy' \(.*TASK_toy.json\) lacks the key\(s\) train_folds\. .*recreate it with `mml create`",
    ),
    "fold with unknown ids": (
        lambda d: d["train_folds"][0].append("ghost"),
        (
            r"Task 'toy' .*: train_folds reference 1 id\(s\) missing from train_samples, "
            r"e.g. \['ghost'\]\. Recreate"
        ),
    ),
    "idx_to_class keys": (
        lambda d: d.update(idx_to_class={"zero": "healthy"}),
        r"Task 'toy' .*: 'idx_to_class' must map class indices to names.*Fix the value or recreate",
    ),
    "means length": (
        lambda d: d.update(means=[0.1, 0.2]),
        (
            r"Task 'toy' .*: 'means' must be a list \[r, g, b\] as MML writes it; got \[0.1, 0.2\]\. "
            r"Fix the value"
        ),
    ),
    "sizes length": (
        lambda d: d.update(sizes=[8, 8]),
        r"'sizes' must be a list \[min_height, max_height, min_width, max_width\]",
    ),
    "unknown class index": (
        lambda d: d["test_samples"]["s09"].update({"class": 7}),
        (
            r"Task 'toy' .*: sample 's09': class index 7 is not in idx_to_class \(\[0, 1\]\)\. "
            r"Fix the entry"
        ),
    ),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_task_file_names_task_problem_and_fix(mml_root, kind):
    change, message = BAD_FILES[kind]
    path = break_file(mml_root / "RAW/DSET_toyset/TASK_toy.json", change)
    with pytest.raises(TaskFileError, match=message):
        read_task_file(path)
    # the planner's factory reports it the same way
    with pytest.raises(TaskFileError, match=message):
        TaskStructFactory(mml_root).num_folds("toy")


def test_task_file_that_is_not_json_or_not_an_object(mml_root):
    path = mml_root / "RAW/DSET_toyset/TASK_toy.json"
    path.write_text('{"name": "toy",')
    with pytest.raises(TaskFileError, match=r"TASK_toy.json is not valid JSON .*Recreate it"):
        read_task_file(path)
    path.write_text("[1, 2]")
    with pytest.raises(TaskFileError, match=r"TASK_toy.json holds a JSON list, not an object; recreate it"):
        read_task_file(path)


def test_task_file_with_missing_images_names_first_files(mml_root):
    path = mml_root / "RAW/DSET_toyset/TASK_toy.json"
    for i in (1, 10):
        (path.parent / f"images/s{i:02d}.png").unlink()
    with pytest.raises(TaskFileError) as err:
        check_files_exist(read_task_file(path), path.parent)
    message = str(err.value)
    assert "Task 'toy' points to missing image files, first: " in message and "restore the files" in message
    assert "images/s01.png" in message and "images/s10.png" in message and "s02.png" not in message


def test_demo_tasks_are_written_in_mml_layout(demo_data):
    for name in DIGITS_TASKS:
        path = demo_data / "RAW" / "DSET_sklearn_digits" / f"TASK_{name}.json"
        data = json.loads(path.read_text())
        assert set(data) == MML_KEYS and len(data["means"]) == 3 and data["sizes"] == [8, 8, 8, 8]
        assert len(data["train_folds"]) == N_FOLDS
        sample = next(iter(data["train_samples"].values()))
        # sample paths are relative to the dataset folder
        assert not sample["image"].startswith("/") and (path.parent / sample["image"]).is_file()
    digits = read_task_file(demo_data / "RAW" / "DSET_sklearn_digits" / "TASK_sk_digits.json")
    assert digits.num_classes == 10 and len(digits.train_samples) + len(digits.test_samples) == 1797
    assert len(digits.test_samples) == 360 and sum(digits.class_occ.values()) == 1437
    folds = [set(f) for f in digits.train_folds]
    assert set().union(*folds) == set(digits.train_samples)
    assert sum(len(f) for f in folds) == len(digits.train_samples)  # folds are disjoint
    assert not set(digits.test_samples) & set(digits.train_samples)


def test_unknown_task_lists_available_and_fix(demo_data):
    with pytest.raises(TaskNotFoundError) as err:
        TaskStructFactory(demo_data).task_file("mnist")
    assert "Unknown task 'mnist'" in str(err.value) and "sk_digits" in str(err.value)
    assert "data_dir" in str(err.value) and "python -m mml_core.tasks" in str(err.value)


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(TaskNotFoundError, match="does not exist"):
        TaskStructFactory(tmp_path / "nope").task_file("mnist")


def test_factory_creates_dumps_and_reloads_demo_structs(demo_data, tmp_path):
    factory = TaskStructFactory(demo_data)
    struct = factory.create_task_struct("sk_digits_parity", return_ref=True)
    assert struct.num_classes == 2 and struct.num_samples > 1000 and struct.task_type == "classification"
    assert struct.paths["dataset_root"] == demo_data / "RAW" / "DSET_sklearn_digits"
    assert factory.get_by_name("sk_digits_parity") is struct
    factory.get_by_name("sk_digits")
    factory.dump(tmp_path / "tasks.json")
    dumped = json.loads((tmp_path / "tasks.json").read_text())
    assert list(dumped) == ["sk_digits_parity", "sk_digits"]
    assert TaskStruct.from_json(dumped["sk_digits_parity"]) == struct
