"""Backbones (plain ``nn.Module``): images in, a feature vector out. Heads live in the LightningModule."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn


class SmallCNN(nn.Module):
    """Two conv blocks and global average pooling; fits small images (the 8x8 demo digits) on a CPU."""

    def __init__(self, in_channels: int, width: int | None = None, dropout: float = 0.1):
        super().__init__()
        width = width or 32
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


class BasicBlock(nn.Module):
    """ResNet's two-convolution residual block (He et al., 2016)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 in plain torch, trained from scratch (no torchvision: see DEVELOPERS.md).

    Images of at least 64 pixels get the ImageNet stem (7x7 stride-2 convolution and max pooling);
    smaller images (the 8x8 demo digits, 28x28 MedMNIST) a 3x3 stride-1 stem, as ResNets for
    CIFAR use, so the four stages still see a spatial map. ``width`` is the first stage's
    channels (64 in the paper); the head-input features get ``dropout``.
    """

    def __init__(self, in_channels: int, width: int | None = None, dropout: float = 0.0, image_size: int = 224):
        super().__init__()
        width = width or 64
        if image_size >= 64:
            stem = [nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            stem = [nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True)]
        layers, planes = [], width
        for stage, stride in enumerate((1, 2, 2, 2)):
            out = width * 2**stage
            layers += [BasicBlock(planes, out, stride), BasicBlock(out, out)]
            planes = out
        self.features = nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.out_features = planes
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.features(x)


BACKBONES = {"small_cnn": SmallCNN, "resnet18": ResNet18}


def build_backbone(arch: Mapping[str, Any], in_channels: int, image_size: int) -> nn.Module:
    """The backbone named ``arch['name']`` with the other ``arch`` keys as arguments.

    ``image_size`` (the smaller side of the task's largest images) lets backbones adapt their stem.
    """
    kwargs = {k: v for k, v in arch.items() if k != "name"}
    name = arch["name"]
    if name not in BACKBONES:
        raise ValueError(f"Unknown arch.name '{name}'. Available backbones: {', '.join(BACKBONES)}.")
    backbone = BACKBONES[name]
    if "image_size" in inspect.signature(backbone).parameters:
        kwargs["image_size"] = image_size
    return backbone(in_channels=in_channels, **kwargs)
