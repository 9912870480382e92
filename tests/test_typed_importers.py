"""Importers of segmentation masks and of multi-label / regression CSVs, on small inputs built on the fly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mml_core.tasks import TaskStructFactory, read_task_file
from mml_core.tasks.__main__ import main
from mml_core.tasks.importers import DataImportError
from mml_core.tasks.masks import MaskReader, check_sample_files
from mml_core.tasks.typed_importers import import_csv, import_masks

N = 12


@pytest.fixture
def pairs(tmp_path: Path) -> tuple[Path, Path]:
    """``images/`` (JPEG and PNG, one in a sub-folder) with grey masks of class indices 0..2 in ``masks/``."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    for k in range(N):
        name = f"sub/case{k}" if k == 0 else f"case{k}"
        suffix = ".jpg" if k % 2 else ".png"
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        (masks / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 8, 3), 20 * k, np.uint8)).save((images / name).with_suffix(suffix))
        mask = np.zeros((6, 8), np.uint8)
        mask[:3, :4] = 1 + k % 2
        mask[5, 7] = 255
        Image.fromarray(mask).save((masks / name).with_suffix(".png"))
    return images, masks


def test_images_with_masks_become_a_segmentation_task(pairs, tmp_path):
    path = import_masks(*pairs, tmp_path / "data", "organs", classes=["background", "liver", "kidney"], n_folds=3,
                        test_fraction=0.25)  # fmt: skip
    desc = read_task_file(path)
    raw = json.loads(path.read_text())
    assert raw["task_type"] == "semantic_segmentation" and raw["modalities"] == {"image": ".png; ", "mask": ".png; "}
    assert raw["idx_to_class"] == {"0": "background", "1": "liver", "2": "kidney"}
    assert len(desc.train_samples) == 9 and len(desc.test_samples) == 3 and len(desc.train_folds) == 3
    assert desc.class_occ["background"] == 9 and desc.class_occ["liver"] + desc.class_occ["kidney"] == 9
    check_sample_files(desc, path.parent)
    sample_id, sample = next((i, s) for i, s in {**desc.train_samples, **desc.test_samples}.items() if i == "sub/case0")
    mask = MaskReader(desc.idx_to_class, "organs").read(path.parent, sample["mask"], (6, 8), sample_id)
    assert mask[0, 0] == 1 and mask[5, 7] == 255 and mask[4, 0] == 0
    struct = TaskStructFactory(tmp_path / "data").get_by_name("organs")
    assert struct.task_type == "semantic_segmentation" and struct.num_classes == 3


def test_mask_problems_stop_the_import_before_anything_is_written(pairs, tmp_path):
    images, masks = pairs
    data = tmp_path / "data"
    with pytest.raises(DataImportError, match=r"holds value\(s\) \[2\] outside the class list \(0..1: background, liver"):
        import_masks(images, masks, data, "organs", classes=["background", "liver"])
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(masks / "case3.png")
    with pytest.raises(DataImportError, match=r"Mask .*case3.png is 5x8 \(HxW\) but its image .*case3.jpg is 6x8"):
        import_masks(images, masks, data, "organs")
    (masks / "case3.png").unlink()
    with pytest.raises(DataImportError, match=r"1 image\(s\) have no mask, first: .*case3.png"):
        import_masks(images, masks, data, "organs")
    assert not data.exists()


def test_16_bit_images_and_masks_import_with_their_values_and_a_broken_mask_is_named(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for k in range(N):
        # a 12-bit scan in a 16-bit PNG (0..4080) and a 16-bit mask of class indices 0..2 (255: ignored)
        scan = (np.arange(48).reshape(6, 8) * 85 + k).astype(np.uint16)
        Image.fromarray(scan).save(images / f"case{k}.png")
        mask = np.zeros((6, 8), np.uint16)
        mask[:3, :4], mask[5, 7] = 1 + k % 2, 255
        Image.fromarray(mask).save(masks / f"case{k}.png")
    path = import_masks(images, masks, tmp_path / "data", "ct", n_folds=3)
    desc = read_task_file(path)
    assert desc.idx_to_class == {0: "0", 1: "1", 2: "2"}
    sample = desc.train_samples["case0"] if "case0" in desc.train_samples else desc.test_samples["case0"]
    with Image.open(path.parent / sample["image"]) as written:
        assert written.mode == "L" and len(np.unique(np.asarray(written))) == 48  # stretched, not clipped
    with Image.open(path.parent / sample["mask"]) as written:
        assert written.mode == "L" and np.asarray(written)[0, 0] == 1 and np.asarray(written)[5, 7] == 255
    (masks / "case4.png").write_bytes(b"not a png")
    with pytest.raises(DataImportError, match=r"Cannot read mask .*case4.png .*Remove or repair the file"):
        import_masks(images, masks, tmp_path / "data2", "ct")
    big = np.zeros((6, 8), np.uint16)
    big[0, 0] = 300
    Image.fromarray(big).save(masks / "case4.png")
    with pytest.raises(DataImportError, match=r"case4.png holds value\(s\) \[300\]; mask values are class indices"):
        import_masks(images, masks, tmp_path / "data2", "ct")
    assert not (tmp_path / "data2").exists()


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    return path


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "xrays"
    folder.mkdir()
    for k in range(N):
        Image.fromarray(np.full((5, 5), 10 * k, np.uint8)).save(folder / f"x{k}.png")
    return folder


def test_csv_of_label_names_becomes_a_multilabel_task(images, tmp_path):
    findings = ["Effusion|Mass", "", "Mass", "Nodule|Effusion"] * 3
    table = write_csv(tmp_path / "labels.csv", [["image", "labels"]] + [[f"x{k}.png", findings[k]] for k in range(N)])
    path = import_csv(images, table, tmp_path / "data", "chest", "multilabel_classification", n_folds=3)
    desc = read_task_file(path)
    assert desc.idx_to_class == {0: "Effusion", 1: "Mass", 2: "Nodule"} and desc.modalities == {"image": ".png; ", "classes": ""}
    samples = {**desc.train_samples, **desc.test_samples}
    assert samples["x0"]["classes"] == [0, 1] and samples["x1"]["classes"] == [] and samples["x3"]["classes"] == [0, 2]
    assert sum(desc.class_occ.values()) == sum(len(s["classes"]) for s in desc.train_samples.values())
    bad = write_csv(tmp_path / "bad.csv", [["image", "labels"], ["x0.png", "Mass|Pneumonia"], ["x1.png", ""]])
    with pytest.raises(DataImportError, match=r"row 2: label\(s\) \['Pneumonia'\] of image x0.png are not in the class list "
                       r"\(Effusion, Mass, Nodule\)\. Add them to --classes"):
        import_csv(images, bad, tmp_path / "data", "chest2", "multilabel_classification",
                   classes=["Effusion", "Mass", "Nodule"])  # fmt: skip


def test_csv_of_one_hot_columns_becomes_a_multilabel_task(images, tmp_path):
    rows = [["image", "cat", "dog"]] + [[f"x{k}.png", str(k % 2), str(int(k % 3 == 0))] for k in range(N)]
    path = import_csv(images, write_csv(tmp_path / "t.csv", rows), tmp_path / "data", "pets", "multilabel_classification")
    samples = {**read_task_file(path).train_samples, **read_task_file(path).test_samples}
    assert samples["x3"]["classes"] == [0, 1] and samples["x2"]["classes"] == []
    rows[2][1] = "yes"
    with pytest.raises(DataImportError, match=r"row 3: class column\(s\) \{'cat': 'yes'\} of image x1.png are not 0 or 1"):
        import_csv(images, write_csv(tmp_path / "t.csv", rows), tmp_path / "data", "pets2", "multilabel_classification")


def test_csv_of_values_becomes_a_regression_task_and_a_word_is_refused(images, tmp_path):
    rows = [["image", "value"]] + [[f"x{k}.png", str(0.5 * k)] for k in range(N)]
    path = import_csv(images, write_csv(tmp_path / "v.csv", rows), tmp_path / "data", "age", "regression")
    desc = read_task_file(path)
    assert desc.idx_to_class == {0: "min", 6: "max"} and desc.class_occ == {}
    assert {**desc.train_samples, **desc.test_samples}["x3"]["value"] == 1.5
    rows[5][1] = "unknown"
    table = write_csv(tmp_path / "v.csv", rows)
    assert main(["import-csv", str(images), str(table), "--task-type", "regression", "--data-dir",
                 str(tmp_path / "data"), "--name", "age2"]) == 1  # fmt: skip
    with pytest.raises(DataImportError, match=r"v.csv, row 6 \(image x4.png\): value 'unknown' is not a number"):
        import_csv(images, table, tmp_path / "data", "age2", "regression")
    assert "age2" not in TaskStructFactory(tmp_path / "data").index


def test_command_line_imports_masks(pairs, tmp_path, capsys):
    images, masks = pairs
    assert main(["import-masks", str(images), str(masks), "--data-dir", str(tmp_path / "data"), "--name", "seg",
                 "--n-folds", "2"]) == 0  # fmt: skip
    assert read_task_file(tmp_path / "data/RAW/DSET_seg/TASK_seg.json").idx_to_class == {0: "0", 1: "1", 2: "2"}
