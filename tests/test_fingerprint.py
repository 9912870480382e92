"""Data fingerprints: stable while the files stay, changed by new content, first written with the data's time."""

from __future__ import annotations

import os
import shutil

import pytest

from mml_core.tasks import TaskFileError, read_task_file
from mml_core.tasks.fingerprint import data_fingerprint, write_fingerprint


@pytest.fixture
def task_file(demo_data, tmp_path):
    dataset = shutil.copytree(demo_data / "RAW/DSET_sklearn_digits", tmp_path / "RAW/DSET_sklearn_digits")
    return dataset / "TASK_sk_digits_low.json"


def fingerprint(task_file):
    return data_fingerprint(task_file, read_task_file(task_file))


def test_a_first_fingerprint_carries_the_newest_data_time_and_is_rewritten_only_on_change(task_file, tmp_path):
    out = tmp_path / "fingerprints/sk_digits_low.json"
    first = fingerprint(task_file)
    assert first == fingerprint(task_file) and first.files == len(read_task_file(task_file).train_samples) + len(
        read_task_file(task_file).test_samples
    )
    assert write_fingerprint(out, task_file, first) is False  # created, not changed
    newest = max(p.stat().st_mtime_ns for p in [task_file, *(task_file.parent / "images").iterdir()])
    assert out.stat().st_mtime_ns == newest  # to the nanosecond: never older than the task file
    assert write_fingerprint(out, task_file, fingerprint(task_file)) is False
    assert out.stat().st_mtime_ns == newest
    image = task_file.parent / "images/digit_0000.png"
    image.write_bytes(image.read_bytes() + b"\0")  # new content under the same name
    changed = fingerprint(task_file)
    assert changed.digest != first.digest
    assert write_fingerprint(out, task_file, changed) is True and out.stat().st_mtime_ns > newest


def test_a_missing_image_is_named(task_file):
    os.remove(task_file.parent / "images/digit_0000.png")
    with pytest.raises(TaskFileError, match=r"points to missing image files, first: .*digit_0000.png"):
        fingerprint(task_file)


def test_a_segmentation_fingerprint_covers_its_masks(demo_data, tmp_path):
    from mml_core.tasks.description import write_task_file
    from mml_core.tasks.types import EMPTY_MASK_TOKEN

    dataset = shutil.copytree(demo_data / "RAW/DSET_synthetic_shapes", tmp_path / "RAW/DSET_synthetic_shapes")
    task_file = dataset / "TASK_shapes_seg.json"
    desc = read_task_file(task_file)
    samples = len(desc.train_samples) + len(desc.test_samples)
    first = fingerprint(task_file)
    assert first.files == 2 * samples  # every image and every mask
    mask = dataset / "masks/scene_0000.png"
    mask.write_bytes(mask.read_bytes() + b"\0")  # a relabelled mask, same name
    assert fingerprint(task_file).digest != first.digest
    # masks are files whatever the task's modalities say; an empty-mask token names no file
    desc.modalities = {"image": ".png"}
    desc.train_samples[next(iter(desc.train_samples))]["mask"] = EMPTY_MASK_TOKEN
    write_task_file(desc, task_file)
    assert fingerprint(task_file).files == 2 * samples - 1
    lost = next(iter(desc.test_samples.values()))["mask"]
    os.remove(dataset / lost)
    with pytest.raises(TaskFileError, match=rf"points to missing mask files, first: .*{lost}"):
        fingerprint(task_file)
