"""Segmentation masks as MML stores them: grey PNGs of class indices, 255 for ignored pixels.

:class:`MaskReader` reads a mask and maps its raw values to class positions (MML's mask loader:
``idx_to_class`` keys are the raw values, several may name one class, 255 stays 255). Grey (L),
palette (P: the palette indices, as VOC-style masks mean them) and 16-bit masks are read as they
are; colour masks are converted to grey as OpenCV's grey reading (MML's loader) does. A value that
``idx_to_class`` does not name, or a mask whose size differs from its image, stops with the file,
the values or sizes, and the fix. :func:`check_mask_sizes` checks every mask of a task against its
image from the file headers alone (what ``prepare_exp`` runs once); loading checks again per sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from mml_core.tasks.description import TaskDescription, TaskFileError, check_files_exist
from mml_core.tasks.types import EMPTY_MASK_TOKEN, IGNORE_INDEX, class_positions

_FIX = "Fix the mask (or idx_to_class), or recreate the task with python -m mml_core.tasks import-masks."


def read_raw_mask(path: Path) -> np.ndarray:
    """The mask at ``path`` as an ``H x W`` integer array of its raw values."""
    with Image.open(path) as image:
        if image.mode in ("L", "P") or image.mode.startswith("I"):
            return np.array(image)
        return np.array(image.convert("L"))


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of the image at ``path``, read from its header."""
    with Image.open(path) as image:
        return image.height, image.width


class MaskReader:
    """Reads the masks of one task as ``uint8`` class positions (255: ignored)."""

    def __init__(self, idx_to_class: Mapping[int, str], task: str):
        self.task = task
        self.known = sorted(idx_to_class)
        self.table = np.full(max(self.known + [IGNORE_INDEX]) + 1, -1, dtype=np.int16)
        for raw, position in class_positions(idx_to_class).items():
            self.table[raw] = position
        self.table[IGNORE_INDEX] = IGNORE_INDEX

    def read(self, root: Path, entry: str, shape: tuple[int, int], sample_id: str) -> np.ndarray:
        """The mask ``entry`` (relative to ``root``) of sample ``sample_id``, whose image is ``shape`` (H, W)."""
        if entry == EMPTY_MASK_TOKEN:
            return np.zeros(shape, dtype=np.uint8)
        path = Path(root) / entry
        raw = read_raw_mask(path)
        if raw.shape != tuple(shape):
            raise TaskFileError(
                f"Task '{self.task}', sample '{sample_id}': mask {path} is {raw.shape[0]}x{raw.shape[1]} (HxW) but its "
                f"image is {shape[0]}x{shape[1]}; a mask must have its image's size. {_FIX}"
            )
        inside = raw < len(self.table)
        mapped = np.where(inside, self.table[np.where(inside, raw, 0)], -1)
        if (mapped < 0).any():
            values = np.unique(raw[mapped < 0])
            raise TaskFileError(
                f"Task '{self.task}', sample '{sample_id}': mask {path} holds value(s) {values[:10].tolist()} that "
                f"idx_to_class ({self.known}) does not name ({IGNORE_INDEX} marks ignored pixels). {_FIX}"
            )
        return mapped.astype(np.uint8)


def check_mask_sizes(desc: TaskDescription, root: Path, limit: int = 5) -> None:
    """Raise :class:`TaskFileError` listing the first samples whose mask and image sizes differ (headers only)."""
    wrong = []
    for samples in (desc.train_samples, desc.test_samples):
        for sample_id, sample in samples.items():
            entry = sample.get("mask")
            if entry is None or entry == EMPTY_MASK_TOKEN:
                continue
            image, mask = image_size(Path(root) / sample["image"]), image_size(Path(root) / entry)
            if image != mask:
                wrong.append(f"'{sample_id}' (mask {entry} is {mask[0]}x{mask[1]}, image {image[0]}x{image[1]})")
                if len(wrong) >= limit:
                    break
    if wrong:
        raise TaskFileError(
            f"Task '{desc.name}': the mask of each sample must have its image's size (HxW); these differ: "
            f"{', '.join(wrong)}. {_FIX}"
        )


def check_sample_files(desc: TaskDescription, root: Path) -> None:
    """Every image and mask of ``desc`` exists under ``root``, and each mask has its image's size."""
    for modality in ("image", "mask"):
        check_files_exist(desc, Path(root), modality)
    check_mask_sizes(desc, root)
