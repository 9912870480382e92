"""The training target of a sample, per MML task type, as batches carry it.

- classification: the class index (int; -1 where unlabeled), as the ``class`` entry gives it;
- multilabel_classification: float32 ``(classes,)``, 1 for each class in ``classes`` (raw indices
  mapped to class positions) or the ``soft_classes`` values (one per class); -1 where unlabeled;
- regression: float32 ``(1,)``, the ``value`` (NaN where unlabeled), as MML's value loader;
- semantic_segmentation: the mask, read with its image (:class:`~mml_core.tasks.masks.MaskReader`,
  ``H x W`` class positions, 255 ignored; 255 everywhere where unlabeled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mml_core.tasks.masks import MaskReader
from mml_core.tasks.types import (
    CLASSIFICATION,
    IGNORE_INDEX,
    MULTILABEL,
    REGRESSION,
    SEGMENTATION,
    class_names,
    class_positions,
    target_modality,
)


class TaskTargets:
    """Reads the targets of one task's samples (see the module docstring)."""

    def __init__(
        self,
        task_type: str = CLASSIFICATION,
        idx_to_class: Mapping[int, str] | None = None,
        modalities: Mapping[str, Any] | None = None,
        task: str = "",
    ):
        self.task_type = task_type
        self.modality = target_modality(task_type, modalities or {})
        idx_to_class = dict(idx_to_class or {})
        self.num_classes = len(class_names(idx_to_class))
        self.positions = class_positions(idx_to_class)
        self.masks = MaskReader(idx_to_class, task) if task_type == SEGMENTATION else None

    def label(self, sample: Mapping[str, Any]) -> Any:
        """The target of ``sample`` (segmentation: its mask entry, or None where unlabeled)."""
        entry = sample.get(self.modality)
        if self.task_type == CLASSIFICATION:
            return int(entry) if entry is not None else -1
        if self.task_type == REGRESSION:
            return np.array([np.nan if entry is None else entry], dtype=np.float32)
        if self.task_type == MULTILABEL:
            target = np.full(self.num_classes, -1.0 if entry is None else 0.0, dtype=np.float32)
            if entry is not None and self.modality == "soft_classes":
                target[:] = entry
            elif entry is not None:
                target[[self.positions[raw] for raw in entry]] = 1.0
            return target
        return entry

    def unlabeled_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask of an unlabeled sample: every pixel ignored."""
        return np.full(shape, IGNORE_INDEX, dtype=np.uint8)
