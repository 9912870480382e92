"""Backbones (plain ``nn.Module``): images in, a feature vector of ``num_features`` out.

``arch.name`` is any timm model (``timm.create_model(name, num_classes=0)``, as MML's
``arch=timm``) or ``small_cnn``, a tiny network for the CPU demo on 8x8 digits. Pretrained weights
come from disk only (see :mod:`mml_core.models.pretrained`): ``arch.weights`` or the local
Hugging Face cache; loading checks that every backbone parameter was found in the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mml_core.config import MisconfigurationError
from mml_core.models.pretrained import cached_timm_weights, hub_cache

logger = logging.getLogger(__name__)

# prefixes under which a backbone's weights may sit in a file: this project's model.pt, Lightning
# checkpoints, and MML's models
_PREFIXES = ("network.backbone.", "backbone.", "model.backbone.")


class SmallCNN(nn.Module):
    """Two conv blocks and global average pooling; fits small images (the 8x8 demo digits) on a CPU."""

    def __init__(self, in_channels: int = 3, width: int = 32):
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
        )
        self.num_features = 2 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file (loaded with ``weights_only=True``: no code runs)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    from mml_core.training.safe_load import load_checkpoint

    state = load_checkpoint(path)
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    return state


def load_backbone_weights(
    backbone: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    prefixes: tuple[str, ...] = _PREFIXES,
    what: str = "backbone",
) -> None:
    """Load ``state`` into ``backbone`` (keys under the first of ``prefixes`` found, else as they are);
    every ``what`` parameter must be found (classifier weights are dropped: heads are created per task)."""
    own = backbone.state_dict()
    for prefix in prefixes:
        if any(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            break
    fitting = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    missing = sorted(set(own) - set(fitting))
    if missing:
        raise MisconfigurationError(
            f"The weights in {source} do not fit the {what}: {len(missing)} of its {len(own)} tensors are "
            f"missing or have another shape (e.g. {missing[:3]}). Use weights of the same architecture as "
            f"{'arch.encoder' if what == 'encoder' else 'arch.name'}, or arch.pretrained=false."
        )
    backbone.load_state_dict(fitting)
    logger.info("Loaded %d %s tensors from %s.", len(fitting), what, source)


def _timm_backbone(name: str, pretrained_from_hub: bool) -> nn.Module:
    import timm

    if not timm.is_model(name.split(".", 1)[0]):
        close = timm.list_models(f"*{name.split('.', 1)[0][:5]}*")[:8]
        raise MisconfigurationError(
            f"Unknown arch.name '{name}': neither small_cnn nor a timm model. "
            + (f"Similar timm models: {', '.join(close)}. " if close else "")
            + "timm.list_models() lists all."
        )
    if not pretrained_from_hub:
        return timm.create_model(name, pretrained=False, num_classes=0)
    # runs never download: the weights must be in the local cache (checked while planning)
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as exc:  # huggingface_hub raises several types when a file is not cached
        cached = cached_timm_weights(name)
        raise MisconfigurationError(
            f"Could not load the pretrained weights of '{name}' from the local cache {hub_cache()} ({exc}). "
            + (f"Cached variants: {', '.join(cached)}; name one of them in arch.name. " if cached else "")
            + "Or set arch.weights to a weights file, or arch.pretrained=false."
        ) from None


def build_backbone(arch: Mapping[str, Any]) -> nn.Module:
    """The backbone ``arch`` names (with ``num_features``), with its pretrained weights where asked for."""
    name, weights = arch["name"], arch.get("weights")
    if name == "small_cnn":
        backbone: nn.Module = SmallCNN()
    else:
        backbone = _timm_backbone(name, pretrained_from_hub=bool(arch.get("pretrained")) and not weights)
    if arch.get("pretrained") and weights:
        load_backbone_weights(backbone, read_weights(Path(weights)), str(weights))
    return backbone
