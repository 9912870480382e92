"""``MultiTaskNetwork``: a shared backbone with one head per task (plain torch).

The head is MML's ``TimmHead``: dropout (``arch.drop_rate``), then a linear layer with Xavier
initialisation, with one output per class (classification, multi-label classification) or a single
value (regression). Segmentation needs a decoder: :mod:`mml_core.models.smp`. Training wraps the
network in the LightningModule; prediction and testing use it as it is, so evaluation needs no
Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mml_core.tasks.types import TaskSpec


def linear_head(num_features: int, num_outputs: int, drop_rate: float) -> nn.Sequential:
    """Dropout and a Xavier-initialised linear layer (MML's ``TimmHead``)."""
    head = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(num_features, num_outputs))
    nn.init.xavier_uniform_(head[1].weight)
    nn.init.zeros_(head[1].bias)
    return head


class MultiTaskNetwork(nn.Module):
    """``forward(x, task_index)``: the output of task ``tasks[task_index]`` (logits, or a value)."""

    def __init__(self, backbone: nn.Module, tasks: Sequence[TaskSpec], drop_rate: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        self.heads = nn.ModuleList(linear_head(backbone.num_features, t.num_outputs, drop_rate) for t in self.tasks)

    def forward(self, x: torch.Tensor, task_index: int = 0) -> torch.Tensor:
        return self.heads[task_index](self.backbone(x))
