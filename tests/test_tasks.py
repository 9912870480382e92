"""Task files in MML's format, TaskStructFactory, tags, demo tasks and their error messages."""

from __future__ import annotations

import json
import shutil

import pytest

from mml_core.tasks import (
    TaskFileError,
    TaskNotFoundError,
    TaskStructFactory,
    deduplicate,
    read_task_file,
    split_task_name,
)
from mml_core.tasks.demo import DEMO_TASKS, N_FOLDS
from mml_core.tasks.description import REQUIRED_KEYS, check_files_exist
from mml_core.tasks.tags import apply_tags

MML_KEYS = REQUIRED_KEYS + ("unlabeled_samples", "description", "keywords", "means", "stds", "sizes", "class_occ")


def test_demo_tasks_are_written_in_mml_layout(demo_data):
    for name in DEMO_TASKS:
        path = demo_data / "RAW" / "DSET_sklearn_digits" / f"TASK_{name}.json"
        data = json.loads(path.read_text())
        assert set(MML_KEYS) <= set(data)
        assert len(data["train_folds"]) == N_FOLDS
        sample = next(iter(data["train_samples"].values()))
        # sample paths are relative to the dataset folder
        assert not sample["image"].startswith("/") and (path.parent / sample["image"]).is_file()
    digits = read_task_file(demo_data / "RAW" / "DSET_sklearn_digits" / "TASK_sk_digits.json")
    assert digits.num_classes == 10 and len(digits.train_samples) + len(digits.test_samples) == 1797
    folds = [set(f) for f in digits.train_folds]
    assert set().union(*folds) == set(digits.train_samples)
    assert sum(len(f) for f in folds) == len(digits.train_samples)  # folds are disjoint
    assert not set(digits.test_samples) & set(digits.train_samples)


def test_factory_creates_dumps_and_reloads_structs(demo_data, tmp_path):
    factory = TaskStructFactory(demo_data)
    struct = factory.create_task_struct("sk_digits_parity", return_ref=True)
    assert struct.num_classes == 2 and struct.num_samples > 1000 and struct.task_type == "classification"
    assert struct.paths["dataset_root"] == demo_data / "RAW" / "DSET_sklearn_digits"
    assert factory.get_by_name("sk_digits_parity") is struct
    factory.get_by_name("sk_digits")
    factory.dump(tmp_path / "tasks.json")
    again = TaskStructFactory(demo_data)
    again.load_dump(tmp_path / "tasks.json")
    assert [s.name for s in again.container] == ["sk_digits_parity", "sk_digits"]
    assert again.get_by_name("sk_digits_parity") == struct


def test_unknown_task_lists_available_and_fix(demo_data):
    with pytest.raises(TaskNotFoundError) as err:
        TaskStructFactory(demo_data).task_file("mnist")
    assert "Unknown task 'mnist'" in str(err.value) and "sk_digits" in str(err.value)
    assert "data_dir" in str(err.value)


def test_missing_data_dir_is_named(tmp_path):
    with pytest.raises(TaskNotFoundError, match="does not exist"):
        TaskStructFactory(tmp_path / "nope").task_file("mnist")


def copy_task(demo_data, tmp_path):
    src = demo_data / "RAW" / "DSET_sklearn_digits"
    dst = tmp_path / "RAW" / "DSET_sklearn_digits"
    shutil.copytree(src, dst)
    return dst / "TASK_sk_digits.json"


def test_task_file_with_missing_key_names_task_and_key(demo_data, tmp_path):
    path = copy_task(demo_data, tmp_path)
    data = json.loads(path.read_text())
    del data["train_folds"]
    path.write_text(json.dumps(data))
    with pytest.raises(TaskFileError, match=r"Task 'sk_digits' .* lacks the key\(s\) train_folds.*recreate"):
        read_task_file(path)


def test_task_file_with_missing_images_names_first_files(demo_data, tmp_path):
    path = copy_task(demo_data, tmp_path)
    desc = read_task_file(path)
    first = next(iter(desc.train_samples.values()))["image"]
    (path.parent / first).unlink()
    with pytest.raises(TaskFileError, match=f"missing image files, first: .*{first}"):
        check_files_exist(desc, path.parent)


def test_tag_syntax_and_duplicates(demo_data):
    assert split_task_name("a+shrink_train?200+identity") == ("a", [("shrink_train", ["200"]), ("identity", [])])
    assert deduplicate(["a", "b", "a"]) == ["a+duplicate?1", "b", "a+duplicate?2"]
    factory = TaskStructFactory(demo_data)
    desc = factory.load_description("sk_digits+identity")
    assert desc.name == "sk_digits+identity" and len(desc.train_samples) == 1437
    with pytest.raises(ValueError, match="unknown tag 'frobnicate'"):
        apply_tags(desc, "sk_digits+frobnicate")
