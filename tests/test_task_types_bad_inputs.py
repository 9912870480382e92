"""Bad input of the other task types after a finished run: one clear message each, no finished result lost.

Works like tests/test_bad_inputs.py (whose helpers it uses): a copy of the finished quick run gets the
demo task of another type written to its data root and one mistake in it; the user's snakemake command
must name the mistake and the fix, and leave the earlier results byte for byte.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_bad_inputs import fails_with, workdir  # noqa: F401 - the fixture

from mml_core.tasks.demo_types import write_typed_demo_tasks

pytestmark = pytest.mark.e2e

SHAPES = "data/RAW/DSET_synthetic_shapes"


def edit_task(path, change) -> str:
    """Write the demo task of ``path`` and apply ``change`` to its first test sample; return that sample's id."""
    write_typed_demo_tasks(path.parents[2], [path.stem.removeprefix("TASK_")])
    data = json.loads(path.read_text())
    sample_id = next(iter(data["test_samples"]))
    change(data["test_samples"][sample_id])
    path.write_text(json.dumps(data))
    return sample_id


def test_multilabel_label_outside_the_class_list(workdir):  # noqa: F811
    path = workdir / "data/RAW/DSET_sklearn_digits/TASK_sk_digits_multilabel.json"
    sample = edit_task(path, lambda s: s.update(classes=[2, 10]))
    fails_with(workdir, f"sample '{sample}': label(s) [10] are not in idx_to_class ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]). "
               "Fix the entry", "task_list=[sk_digits, sk_digits_multilabel]")  # fmt: skip


def test_regression_value_that_is_not_a_number(workdir):  # noqa: F811
    sample = edit_task(workdir / SHAPES / "TASK_shapes_area.json", lambda s: s.update(value="0,31"))
    fails_with(workdir, f"sample '{sample}': 'value' must be a finite number, got '0,31' (str)",
               "task_list=[sk_digits, shapes_area]")  # fmt: skip


def test_mask_whose_size_differs_from_its_image(workdir):  # noqa: F811
    write_typed_demo_tasks(workdir / "data", ["shapes_seg"])
    data = json.loads((workdir / SHAPES / "TASK_shapes_seg.json").read_text())
    sample_id, sample = next(iter(data["train_samples"].items()))
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(workdir / SHAPES / sample["mask"])
    fails_with(workdir, f"'{sample_id}' (mask {sample['mask']} is 30x30, image 32x32)", "task_list=[sk_digits, shapes_seg]")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (["task_list=[shapes_seg]", "pivot={name: shapes_seg}"],
         "Task 'shapes_seg' is semantic_segmentation, which arch.name=small_cnn (a timm backbone, MML's arch=timm) "
         "cannot serve"),
        (["task_list=[shapes_seg, shapes_area]", "pivot={name: shapes_seg}", "arch={arch: unet, encoder: resnet18}",
          "mode={multitask: 2, co_tasks: [shapes_area]}"],
         "Task 'shapes_area' is regression, which arch.arch=unet with encoder resnet18 (segmentation_models_pytorch, "
         "MML's arch=smp) cannot serve (as in MML)"),
    ],
    ids=["segmentation-on-timm", "regression-co-task-on-smp"],
)  # fmt: skip
def test_task_type_the_architecture_cannot_serve_stops_planning(workdir, config, message):  # noqa: F811
    output = fails_with(workdir, message, *config)
    assert "Traceback" not in output and output.count(message) == 1
