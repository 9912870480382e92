"""``MultiTaskNetwork``: a shared backbone with one classification head per task (plain torch).

The head is MML's ``TimmHead``: dropout (``arch.drop_rate``), then a linear layer with Xavier
initialisation. Training wraps the network in the LightningModule; prediction and testing use it
as it is, so evaluation needs no Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class MultiTaskNetwork(nn.Module):
    """``forward(x, task_index)``: the logits of task ``task_names[task_index]``."""

    def __init__(self, backbone: nn.Module, task_classes: Mapping[str, int], drop_rate: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.task_names = list(task_classes)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Dropout(drop_rate), nn.Linear(backbone.num_features, n)) for n in task_classes.values()
        )
        for head in self.heads:
            nn.init.xavier_uniform_(head[1].weight)
            nn.init.zeros_(head[1].bias)

    def forward(self, x: torch.Tensor, task_index: int = 0) -> torch.Tensor:
        return self.heads[task_index](self.backbone(x))
