"""MML's ``pp``: write a preprocessed version of a task once, in MML's on-disk layout.

``PREPROCESSED/<id>/DSET_<dataset>/TASK_<task>.json`` with its images beside it (same relative
paths, PNG; segmentation masks likewise, transformed with their image and keeping their raw values),
so every later experiment with ``preprocessing.id: <id>`` (and MML itself) reads it instead of
preprocessing on the fly. Images are written atomically; a run interrupted before the
task file (written last) keeps the images it wrote and the next run continues from there, as long
as the pipeline is the same (recorded beside them). Means, stds and sizes are recomputed over the
training pool.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from mml_core.data.transforms import preprocessing_pipeline
from mml_core.io import atomic_write, atomic_write_text
from mml_core.tasks.description import RGB_KEYS, SIZE_KEYS, read_task_file, write_task_file
from mml_core.tasks.images import ImageStatistics, read_rgb
from mml_core.tasks.index import version_path
from mml_core.tasks.masks import read_raw_mask
from mml_core.tasks.types import EMPTY_MASK_TOKEN

logger = logging.getLogger(__name__)


def preprocess_task(raw_task_file: Path, preprocessing: str, pipeline: Sequence[Mapping[str, Any]]) -> Path:
    """Write the ``preprocessing`` version of the task in ``raw_task_file``; return its task file."""
    raw_task_file = Path(raw_task_file)
    transform = preprocessing_pipeline(pipeline)
    desc = read_task_file(raw_task_file)
    source, target = raw_task_file.parent, version_path(raw_task_file, preprocessing).parent
    splits = {"train_samples": desc.train_samples, "test_samples": desc.test_samples,
              "unlabeled_samples": desc.unlabeled_samples}  # fmt: skip
    # images of an interrupted run of the same pipeline are complete (atomic) and are kept
    marker = target / f".pp-{desc.name}.json"
    recorded = json.dumps([dict(entry) for entry in pipeline], sort_keys=True)
    resume = marker.is_file() and marker.read_text() == recorded
    if not resume:
        atomic_write_text(marker, recorded)
    stats = ImageStatistics()
    written: dict[str, dict[str, dict]] = {}
    total = sum(len(samples) for samples in splits.values())
    with tqdm(total=total, desc=f"pp {desc.name}", unit="img", disable=None) as progress:
        for split, samples in splits.items():
            written[split] = {}
            for sample_id, sample in samples.items():
                relative = Path(sample["image"]).with_suffix(".png")
                path = target / relative
                entry = {**sample, "image": relative.as_posix()}
                mask_entry = sample.get("mask")
                masked = mask_entry not in (None, EMPTY_MASK_TOKEN)
                if masked:
                    entry["mask"] = Path(mask_entry).with_suffix(".png").as_posix()
                if resume and path.is_file() and (not masked or (target / entry["mask"]).is_file()):
                    image = read_rgb(path)
                else:
                    image = read_rgb(source / sample["image"])
                    mask = read_raw_mask(source / mask_entry) if masked else None
                    if transform is not None:
                        image, mask = transform(image, mask)
                    if masked:  # before the image: an image on disk means its mask is there too
                        atomic_write(target / entry["mask"], lambda tmp, m=mask: Image.fromarray(m).save(tmp, format="PNG"))
                    atomic_write(path, lambda tmp, image=image: Image.fromarray(image).save(tmp, format="PNG"))
                if split == "train_samples":
                    stats.add(image)
                written[split][sample_id] = entry
                progress.update()
    version = dataclasses.replace(
        desc,
        **written,
        means=dict(zip(RGB_KEYS, stats.means())),
        stds=dict(zip(RGB_KEYS, stats.stds())),
        sizes=dict(zip(SIZE_KEYS, stats.sizes())),
        creation_protocol=f"{desc.creation_protocol} Preprocessed as '{preprocessing}' by mml_core: "
        f"{[dict(entry) for entry in pipeline]}.",
    )
    path = write_task_file(version, target / raw_task_file.name)
    logger.info("Wrote %s version of task %s (%d images) to %s", preprocessing, desc.name, total, path)
    return path

