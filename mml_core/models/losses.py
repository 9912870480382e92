"""The loss of each task, from MML's ``loss`` group: one criterion per task type.

``loss.cls`` (classification, default cross-entropy), ``loss.mlcls`` (multi-label, default
``BCEWithLogitsLoss``), ``loss.reg`` (regression, default ``HuberLoss``) and ``loss.seg``
(segmentation, default smp's ``DiceLoss``; :class:`DiceCELoss` adds cross-entropy, nnU-Net's
choice), each ``{_target_: <criterion>, **kwargs}``. A segmentation criterion that takes them gets
``ignore_index=255`` (the mask format's ignored pixels) and smp's ``mode="multiclass"`` unless the
spec sets them, so switching criteria never needs to unset the other's arguments.

Class weights as MML: ``loss.class_weights`` gives them explicitly; otherwise, with
``loss.auto_activate_weighing`` and without balanced sampling, each class is weighted
``max(count) / count`` over the training pool's class occurrences (multi-label: per label;
segmentation: images showing the class). A criterion without a ``weight`` argument (Huber, Dice)
is used unweighted, as MML does.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mml_core.config import MisconfigurationError, instantiate, locate
from mml_core.tasks.types import IGNORE_INDEX, SEGMENTATION, TASK_TYPES

logger = logging.getLogger(__name__)
# arguments a segmentation criterion gets where it takes them and the spec leaves them out
_SEGMENTATION_DEFAULTS = {"ignore_index": IGNORE_INDEX, "mode": "multiclass"}


def class_weights(counts: Sequence[int]) -> list[float]:
    """``max(counts) / count`` per class; classes without training samples get weight 1 (never a target)."""
    top = max(counts) if counts else 0
    return [top / count if count else 1.0 for count in counts]


def _accepts(target: str, name: str) -> bool:
    try:
        parameters = inspect.signature(locate(target)).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def task_loss(loss: Mapping[str, Any], task_type: str, counts: Sequence[float], balanced: bool) -> nn.Module:
    """The criterion ``loss.<route>`` of a task of ``task_type`` whose classes (in order) occur ``counts``
    times in the training pool (empty where unknown, e.g. regression)."""
    route = TASK_TYPES[task_type].route
    spec = dict(loss[route])
    if task_type == SEGMENTATION:
        spec.update({k: v for k, v in _SEGMENTATION_DEFAULTS.items() if k not in spec and _accepts(spec["_target_"], k)})
    weights = None
    if loss.get("class_weights"):
        weights = [float(w) for w in loss["class_weights"]]
        if len(weights) != len(counts):
            raise MisconfigurationError(
                f"loss.class_weights has {len(weights)} weights but the task has {len(counts)} classes; give one per class."
            )
    elif loss.get("auto_activate_weighing") and not balanced and any(counts):
        weights = class_weights(counts)
    if weights is None:
        return instantiate(spec)
    try:
        return instantiate(spec, weight=torch.tensor(weights, dtype=torch.float32))
    except TypeError:
        logger.warning("Criterion %s takes no class weights; class imbalance is not weighted.", spec["_target_"])
        return instantiate(spec)


class DiceCELoss(nn.Module):
    """Dice loss plus cross-entropy over the pixels (smp's ``DiceLoss`` and torch's ``CrossEntropyLoss``),
    each weighted; ``weight`` (class weights) applies to the cross-entropy part."""

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        weight: torch.Tensor | None = None,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
    ):
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.dice = DiceLoss(mode="multiclass", ignore_index=ignore_index)
        self.ce = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
        self.dice_weight, self.ce_weight = dice_weight, ce_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_weight * self.dice(logits, target) + self.ce_weight * self.ce(logits, target)
