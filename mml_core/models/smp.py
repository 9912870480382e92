"""Segmentation networks from segmentation_models_pytorch (MML's ``arch=smp``), one head per task.

``arch.arch`` names the architecture (``unet``, ``unetplusplus``, ``fpn``, ``deeplabv3plus`` ...),
``arch.encoder`` the encoder (smp's own, e.g. ``resnet18``, or ``tu-<timm model>``). As in MML's
``SMPGenericModel``, a segmentation task's head sits on the decoder (a convolution to one channel
per class, upsampled as the architecture's own head), a (multi-label) classification task's head on
the encoder's deepest features (average pooling, dropout ``arch.drop_rate``, linear). Heads return
logits (MML's segmentation head applies a softmax first; losses here take logits).

Weights come from disk only: ``arch.weights`` (the encoder's weights, e.g. a timm or torchvision
checkpoint, or this project's ``model.pt`` of an smp network) or, for a ``tu-`` encoder, timm's
weights in the local Hugging Face cache (see :mod:`mml_core.models.pretrained`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mml_core.config import MisconfigurationError
from mml_core.models.archs import TIMM_PREFIX, smp_encoder
from mml_core.models.backbones import load_backbone_weights, read_weights
from mml_core.models.pretrained import hub_cache
from mml_core.tasks.types import SEGMENTATION, TaskSpec


class SMPNetwork(nn.Module):
    """``forward(x, task_index)``: per-pixel logits (segmentation) or logits (classification) of a task."""

    def __init__(self, model: nn.Module, tasks: Sequence[TaskSpec], drop_rate: float = 0.0):
        from segmentation_models_pytorch.base import ClassificationHead, SegmentationHead, initialization

        super().__init__()
        template = model.segmentation_head
        conv, upsample = template[0], template[1]
        # the model's own heads are replaced by one head per task
        model.segmentation_head = nn.Identity()
        model.classification_head = None
        self.backbone = model
        self.tasks = list(tasks)
        self.task_names = [t.name for t in self.tasks]
        heads = []
        for task in self.tasks:
            if task.task_type == SEGMENTATION:
                head = SegmentationHead(
                    conv.in_channels, task.num_outputs, kernel_size=conv.kernel_size[0],
                    upsampling=int(getattr(upsample, "scale_factor", 1) or 1),
                )  # fmt: skip
            else:
                head = ClassificationHead(model.encoder.out_channels[-1], task.num_outputs, dropout=drop_rate)
            initialization.initialize_head(head)
            heads.append(head)
        self.heads = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor, task_index: int = 0) -> torch.Tensor:
        try:
            self.backbone.check_input_shape(x)
        except RuntimeError as exc:
            stride = self.backbone.encoder.output_stride
            raise MisconfigurationError(
                f"{exc} The segmentation network needs image sides that are multiples of {stride}: add e.g. "
                f"{{name: PadIfNeeded, min_height: <multiple of {stride}>, min_width: ..., pad_height_divisor: {stride}, "
                f"pad_width_divisor: {stride}}} or a Resize to preprocessing.pipeline."
            ) from None
        features = self.backbone.encoder(x)
        if self.tasks[task_index].task_type == SEGMENTATION:
            return self.heads[task_index](self.backbone.decoder(features))
        return self.heads[task_index](features[-1])


def _create(arch: Mapping[str, Any], from_cache: bool) -> nn.Module:
    import segmentation_models_pytorch as smp

    name, encoder = str(arch["arch"]), smp_encoder(arch)
    if name.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
        raise MisconfigurationError(
            f"Unknown arch.arch '{name}': segmentation_models_pytorch has {', '.join(smp.MODEL_ARCHITECTURES_MAPPING)}."
        )
    if not encoder.startswith(TIMM_PREFIX) and encoder not in smp.encoders.get_encoder_names():
        raise MisconfigurationError(
            f"Unknown arch.encoder '{encoder}': neither one of segmentation_models_pytorch's encoders "
            "(smp.encoders.get_encoder_names()) nor a timm model as tu-<name> (e.g. tu-resnet18)."
        )
    if from_cache:
        os.environ["HF_HUB_OFFLINE"] = "1"  # runs never download (checked while planning)
    try:
        return smp.create_model(name, encoder_name=encoder, encoder_weights=True if from_cache else None, in_channels=3)
    except Exception as exc:  # timm and huggingface_hub raise several types for unknown models or missing files
        where = f" from the local cache {hub_cache()}" if from_cache else ""
        raise MisconfigurationError(
            f"Could not build {name} with encoder '{encoder}'{where}: {str(exc).splitlines()[0]}. Check arch.encoder "
            "(tu-<timm model> must name a timm model with features_only support), or set arch.pretrained=false."
        ) from None


def build_smp_network(arch: Mapping[str, Any], tasks: Sequence[TaskSpec]) -> SMPNetwork:
    """The ``arch`` smp network with one head per task of ``tasks``; encoder weights from disk where
    ``arch.pretrained`` asks (``arch.weights``, else the timm cache of a ``tu-`` encoder)."""
    weights = arch.get("weights")
    pretrained = bool(arch.get("pretrained"))
    model = _create(arch, from_cache=pretrained and not weights)
    if pretrained and weights:
        encoder = model.encoder
        # a tu- encoder keeps its timm model under .model, whose keys a timm checkpoint uses
        target, inner = (encoder.model, "encoder.model.") if hasattr(encoder, "model") else (encoder, "encoder.")
        prefixes = tuple(f"{outer}{inner}" for outer in ("network.backbone.", "backbone.", ""))
        load_backbone_weights(target, read_weights(Path(weights)), str(weights), prefixes=prefixes, what="encoder")
    return SMPNetwork(model, tasks, drop_rate=float(arch.get("drop_rate") or 0.0))
