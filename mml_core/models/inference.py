"""Running a trained network over a split without Lightning: what prediction needs, nothing more.

Outputs are stored in the form :mod:`mml_core.results.predictions` names per task type, encoded per
batch so that nothing per pixel is kept in float: segmentation keeps the predicted class of each
pixel (uint8), never its logits.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from mml_core.results.predictions import OUTPUT_FIELD
from mml_core.tasks.types import MULTILABEL, REGRESSION, SEGMENTATION

_TARGET_DTYPE = {MULTILABEL: np.float32, REGRESSION: np.float32, SEGMENTATION: np.uint8}


def device_for(accelerator: str) -> torch.device:
    """The device of ``trainer.accelerator`` (cpu, gpu/cuda, auto) on this machine."""
    wants_gpu = str(accelerator).lower() in ("gpu", "cuda", "auto")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


def encode_outputs(task_type: str, outputs: torch.Tensor) -> np.ndarray:
    """A batch of network outputs as stored: logits (float32), values (regression) or class masks (uint8)."""
    if task_type == SEGMENTATION:
        return outputs.argmax(dim=1).to(torch.uint8).cpu().numpy()
    if task_type == REGRESSION:
        return outputs.reshape(-1).float().cpu().numpy()
    return outputs.float().cpu().numpy()


def encode_targets(task_type: str, targets: torch.Tensor) -> np.ndarray:
    """A batch of targets as stored: class indices (int64), label vectors or values (float32), masks (uint8)."""
    array = torch.as_tensor(targets).cpu().numpy()
    if task_type == REGRESSION:
        array = array.reshape(-1)
    return array.astype(_TARGET_DTYPE.get(task_type, np.int64))


@torch.inference_mode()
def predict(
    network: nn.Module, batches: Iterable, head: int, device: torch.device, task_type: str
) -> dict[str, np.ndarray]:
    """Outputs (under the type's field name, see :data:`~mml_core.results.predictions.OUTPUT_FIELD`),
    ``targets`` and dataset ``indices`` of every sample of ``batches`` through ``head``."""
    network.eval().to(device)
    outputs, targets, indices = [], [], []
    for images, batch_targets, batch_indices in batches:
        outputs.append(encode_outputs(task_type, network(images.to(device), head)))
        targets.append(encode_targets(task_type, batch_targets))
        indices.append(torch.as_tensor(batch_indices).numpy())
    field = OUTPUT_FIELD[task_type]
    if not outputs:
        return {field: np.empty((0, 0), np.float32), "targets": np.empty(0, np.int64), "indices": np.empty(0, np.int64)}
    return {field: np.concatenate(outputs), "targets": np.concatenate(targets), "indices": np.concatenate(indices)}
