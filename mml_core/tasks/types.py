"""MML's task types: what a sample of each carries as its target, and how its task file is checked.

The four types MML trains (``TaskType``), each with its target modality in the samples of a task file:

- ``classification``: ``class`` (an index of ``idx_to_class``);
- ``multilabel_classification``: ``classes`` (a list of indices, any number of them) or
  ``soft_classes`` (one value in [0, 1] per class, in index order);
- ``regression``: ``value`` (a number; MML's task creator keeps it within ``min(idx_to_class)`` ..
  ``max(idx_to_class)``, which are the bounds, not classes);
- ``semantic_segmentation``: ``mask`` (a grey PNG of class indices, 255 ignored, relative to the
  dataset folder like the image; ``EMPTY_MASK_TOKEN`` for an image without foreground).

``route`` is MML's name of the type in the ``loss`` and ``metrics`` groups (``loss.cls`` ...).
Classes are ordered as MML orders them (:func:`class_names`): by index, names de-duplicated, so
several raw indices (e.g. mask grey values) may map to one class. Importable without torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

CLASSIFICATION = "classification"
MULTILABEL = "multilabel_classification"
REGRESSION = "regression"
SEGMENTATION = "semantic_segmentation"
# the mask value of pixels that count for no class (MML: "generally unsure", e.g. object borders)
IGNORE_INDEX = 255
# MML's mask entry of an image whose mask would be all background
EMPTY_MASK_TOKEN = "EMPTY_MASK_TOKEN"


@dataclasses.dataclass(frozen=True)
class TaskType:
    """One of MML's task types: its loss/metrics route and the modalities that carry its target."""

    name: str
    route: str
    targets: tuple[str, ...]


TASK_TYPES: dict[str, TaskType] = {
    t.name: t
    for t in (
        TaskType(CLASSIFICATION, "cls", ("class",)),
        TaskType(MULTILABEL, "mlcls", ("classes", "soft_classes")),
        TaskType(REGRESSION, "reg", ("value",)),
        TaskType(SEGMENTATION, "seg", ("mask",)),
    )
}


class TaskTypeError(ValueError):
    """A task's type or a sample's target does not fit MML's format; the message names task, sample and fix."""


def task_type(name: str, where: str) -> TaskType:
    """The :class:`TaskType` called ``name``; ``where`` (the task file) is named if it is unknown."""
    if name not in TASK_TYPES:
        raise TaskTypeError(
            f"{where} has task_type '{name}'; mml_core trains {', '.join(TASK_TYPES)} (MML's TaskType values). "
            "Fix the task_type or leave the task out of task_list."
        )
    return TASK_TYPES[name]


def class_names(idx_to_class: Mapping[int, str]) -> list[str]:
    """The classes in MML's order: by increasing index, each name once."""
    return list(dict.fromkeys(idx_to_class[k] for k in sorted(idx_to_class)))


def class_positions(idx_to_class: Mapping[int, str]) -> dict[int, int]:
    """Raw index (a ``class``/``classes`` entry, a mask value) -> position of its class in :func:`class_names`."""
    names = class_names(idx_to_class)
    return {raw: names.index(name) for raw, name in idx_to_class.items()}


def target_modality(type_name: str, modalities: Mapping[str, Any]) -> str:
    """The sample key holding the target of a task of ``type_name`` (``classes`` or ``soft_classes`` for
    multi-label tasks, whichever the task's ``modalities`` list; MML prefers ``classes``)."""
    options = TASK_TYPES[type_name].targets
    return next((m for m in options if m in modalities), options[0])


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What a model needs to know of a task: name, type and classes (regression: the bounds' names)."""

    name: str
    task_type: str
    classes: tuple[str, ...]

    @property
    def num_outputs(self) -> int:
        """Outputs of the task's head: one per class, one value for regression (as MML's heads)."""
        return 1 if self.task_type == REGRESSION else len(self.classes)

    @classmethod
    def of(cls, name: str, task_type_name: str, idx_to_class: Mapping[int, str]) -> TaskSpec:
        return cls(name, task_type_name, tuple(class_names(idx_to_class)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _target_problem(type_name: str, modality: str, value: Any, idx_to_class: Mapping[int, str]) -> str | None:
    """Why ``value`` is no valid ``modality`` entry of a task of ``type_name`` (None if it is)."""
    known = sorted(idx_to_class)
    if modality == "class":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"'class' must be an integer index, got {value!r}"
        if value not in idx_to_class:
            return f"class index {value} is not in idx_to_class ({known})"
    elif modality == "classes":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return f"'classes' must be a list of integer indices, got {value!r}"
        outside = sorted(set(value) - set(idx_to_class))
        if outside:
            return f"label(s) {outside} are not in idx_to_class ({known})"
    elif modality == "soft_classes":
        n = len(class_names(idx_to_class))
        if not isinstance(value, list) or len(value) != n or not all(_is_number(v) and 0 <= v <= 1 for v in value):
            return f"'soft_classes' must list {n} values in [0, 1] (one per class), got {value!r}"
    elif modality == "value":
        if not _is_number(value):
            return f"'value' must be a finite number, got {value!r} ({type(value).__name__})"
    elif modality == "mask":
        if not isinstance(value, str) or not value:
            return f"'mask' must be the path of a PNG of class indices (or {EMPTY_MASK_TOKEN}), got {value!r}"
    return None


def check_targets(
    type_name: str,
    idx_to_class: Mapping[int, str],
    modalities: Mapping[str, Any],
    splits: Sequence[Mapping[str, Mapping[str, Any]]],
    where: str,
    fix: str,
) -> None:
    """Raise :class:`TaskTypeError` at the first labelled sample whose target entry does not fit the type.

    ``splits`` are the labelled sample dicts (train and test); each sample needs the type's target
    modality (:func:`target_modality`). Segmentation classes must fit into a uint8 mask (at most 255).
    """
    kind = task_type(type_name, where)
    if kind.name == SEGMENTATION and any(not 0 <= k < IGNORE_INDEX for k in idx_to_class):
        raise TaskTypeError(
            f"{where}: a segmentation task's idx_to_class keys are mask values 0..{IGNORE_INDEX - 1} ({IGNORE_INDEX} "
            f"is ignored); got {sorted(idx_to_class)}. {fix}"
        )
    modality = target_modality(kind.name, modalities)
    for samples in splits:
        for sample_id, sample in samples.items():
            if modality not in sample:
                raise TaskTypeError(
                    f"{where}: sample '{sample_id}' has no '{modality}' entry, which every labelled sample of a "
                    f"{kind.name} task needs (it has {sorted(sample)}). {fix}"
                )
            problem = _target_problem(kind.name, modality, sample[modality], idx_to_class)
            if problem:
                raise TaskTypeError(f"{where}: sample '{sample_id}': {problem}. {fix}")


def png_modalities(type_name: str, modality: str | None = None) -> dict[str, str]:
    """The ``modalities`` entry MML's task creator writes for PNG images with targets in ``modality``
    (default: the type's first): file suffixes of path modalities, "" for values."""
    modality = modality or TASK_TYPES[type_name].targets[0]
    return {"image": ".png; ", modality: ".png; " if modality == "mask" else ""}
