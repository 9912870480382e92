"""Running a trained network over a split without Lightning: what prediction needs, nothing more."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn


def device_for(accelerator: str) -> torch.device:
    """The device of ``trainer.accelerator`` (cpu, gpu/cuda, auto) on this machine."""
    wants_gpu = str(accelerator).lower() in ("gpu", "cuda", "auto")
    return torch.device("cuda" if wants_gpu and torch.cuda.is_available() else "cpu")


@torch.inference_mode()
def predict(network: nn.Module, batches: Iterable, head: int, device: torch.device) -> dict[str, np.ndarray]:
    """Logits (float32), targets and dataset indices of every sample of ``batches`` through ``head``."""
    network.eval().to(device)
    logits, targets, indices = [], [], []
    for images, batch_targets, batch_indices in batches:
        logits.append(network(images.to(device), head).float().cpu())
        targets.append(torch.as_tensor(batch_targets))
        indices.append(torch.as_tensor(batch_indices))
    if not logits:
        return {"logits": np.empty((0, 0), np.float32), "targets": np.empty(0, np.int64), "indices": np.empty(0, np.int64)}
    return {
        "logits": torch.cat(logits).numpy(),
        "targets": torch.cat(targets).numpy(),
        "indices": torch.cat(indices).numpy(),
    }
