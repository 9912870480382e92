"""Where pretrained backbone weights come from, without the network (torch-free: planning imports it).

Runs never download. ``arch.pretrained: true`` takes the weights from ``arch.weights`` (a
``.safetensors``, ``.pth``, ``.pt`` or ``.bin`` file) or, for a timm model, from the local
Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``), where
``timm.create_model(..., pretrained=True)`` on a machine with network leaves them
(``models--timm--<name>.<tag>/``). :func:`check_weights` stops planning when neither is there.
For segmentation_models_pytorch (``arch.arch``) the weights are the encoder's: ``arch.weights``, or
for a ``tu-<timm model>`` encoder that timm model's weights in the cache.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.config import MisconfigurationError

OWN_BACKBONES = ("small_cnn",)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_HUB_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def hub_cache() -> Path:
    """The Hugging Face hub cache folder this process would use."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home) / "hub"


def cached_timm_weights(name: str) -> list[str]:
    """timm model names whose weights lie in the local hub cache for ``name`` (``resnet18`` matches
    every tag, ``resnet18.a1_in1k`` only itself)."""
    patterns = [name] if "." in name else [name, f"{name}.*"]
    found = []
    for pattern in patterns:
        for folder in sorted(hub_cache().glob(f"models--timm--{pattern}")):
            if any(folder.glob(f"snapshots/*/{file}") for file in _HUB_FILES):
                found.append(folder.name.removeprefix("models--timm--"))
    return found


def check_weights(arch: Mapping[str, Any]) -> None:
    """Raise :class:`MisconfigurationError` when ``arch.pretrained`` asks for weights that are not on disk."""
    from mml_core.models.archs import SMP, TIMM_PREFIX, arch_kind, smp_encoder

    if not arch.get("pretrained"):
        return
    name, weights = arch["name"], arch.get("weights")
    if arch_kind(arch) == SMP and not weights:
        encoder = smp_encoder(arch)
        if not encoder.startswith(TIMM_PREFIX):
            raise MisconfigurationError(
                f"arch.pretrained=true with the segmentation_models_pytorch encoder '{encoder}', whose weights smp "
                "would download, and runs never download. Set arch.weights to a weights file of the encoder (e.g. "
                f"torchvision's), use a timm encoder ({TIMM_PREFIX}<name>) with its weights in the local cache, or set "
                "arch.pretrained=false."
            )
        name = encoder.removeprefix(TIMM_PREFIX)
    elif weights:
        path = Path(weights)
        if not path.is_file():
            named = (
                " (MML's arch=smp names weights such as 'imagenet' that smp downloads; here arch.weights is a file, "
                "and a tu- encoder takes its timm weights from the local cache with arch.weights=null)"
                if arch_kind(arch) == SMP and not path.suffix
                else ""
            )
            raise MisconfigurationError(
                f"arch.weights={weights} does not exist (relative paths start in the working directory){named}. Point "
                "it at a weights file (.safetensors, .pth, .pt, .bin) or set arch.pretrained=false."
            )
        if path.suffix not in WEIGHT_SUFFIXES:
            raise MisconfigurationError(
                f"arch.weights={weights} is not a weights file ({', '.join(WEIGHT_SUFFIXES)}). Save the weights "
                "with torch.save(state_dict, ...) or safetensors, or set arch.pretrained=false."
            )
    if weights:
        return
    if name in OWN_BACKBONES:
        raise MisconfigurationError(
            f"arch.name={name} has no published weights: set arch.weights to a weights file of it, or "
            "arch.pretrained=false."
        )
    if not cached_timm_weights(name):
        raise MisconfigurationError(
            f"arch.pretrained=true but no weights of timm model '{name}' are on this machine, and runs never "
            f"download. Put them in the Hugging Face cache {hub_cache()}/models--timm--{name}.<tag>/ (on a "
            f"machine with network: python -c \"import timm; timm.create_model('{name}', pretrained=True)\" "
            "and copy that folder), or save them to a file and set arch.weights: path/to/weights.safetensors, or "
            "set arch.pretrained=false."
        )
