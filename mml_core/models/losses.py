"""The loss of each task, from MML's ``loss`` group.

``loss.cls`` is the classification criterion (``{_target_: torch.nn.CrossEntropyLoss}``, plus its
keyword arguments such as ``label_smoothing``). Class weights as MML: ``loss.class_weights`` gives
them explicitly; otherwise, with ``loss.auto_activate_weighing`` and without balanced sampling,
each class is weighted ``max(count) / count`` over the training pool's class counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mml_core.config import MisconfigurationError, instantiate

logger = logging.getLogger(__name__)


def class_weights(counts: Sequence[int]) -> list[float]:
    """``max(counts) / count`` per class; classes without training samples get weight 1 (never a target)."""
    top = max(counts) if counts else 0
    return [top / count if count else 1.0 for count in counts]


def classification_loss(loss: Mapping[str, Any], counts: Sequence[int], balanced: bool) -> nn.Module:
    """The criterion of a classification task whose classes (in index order) have ``counts`` training samples."""
    weights = None
    if loss.get("class_weights"):
        weights = [float(w) for w in loss["class_weights"]]
        if len(weights) != len(counts):
            raise MisconfigurationError(
                f"loss.class_weights has {len(weights)} weights but the task has {len(counts)} classes; give one per class."
            )
    elif loss.get("auto_activate_weighing") and not balanced:
        weights = class_weights(counts)
    spec = dict(loss["cls"])
    if weights is None:
        return instantiate(spec)
    try:
        return instantiate(spec, weight=torch.tensor(weights, dtype=torch.float32))
    except TypeError:
        logger.warning("Criterion %s takes no class weights; class imbalance is not weighted.", spec["_target_"])
        return instantiate(spec)
