"""Backbones (plain ``nn.Module``): images in, a feature vector out. Heads live in the LightningModule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn


class SmallCNN(nn.Module):
    """Two conv blocks and global average pooling; fits small images (the 8x8 demo digits) on a CPU."""

    def __init__(self, in_channels: int, width: int = 32, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout),
        )
        self.out_features = 2 * width

    def forward(self, x):
        return self.features(x)


BACKBONES = {"small_cnn": SmallCNN}


def build_backbone(arch: Mapping[str, Any], in_channels: int) -> nn.Module:
    """The backbone named ``arch['name']`` with the other ``arch`` keys as arguments."""
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    name = arch["name"]
    if name not in BACKBONES:
        raise ValueError(f"Unknown arch.name '{name}'. Available backbones: {', '.join(BACKBONES)}.")
    return BACKBONES[name](in_channels=in_channels, **kwargs)
