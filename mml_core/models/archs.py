"""Which architecture serves which task types (MML's ``supports``); torch-free, so planning checks it.

``arch.arch`` set (unet, fpn, deeplabv3plus ...) selects segmentation_models_pytorch, MML's
``arch=smp``: an encoder (``arch.encoder``, smp's own or ``tu-<timm model>``) with a decoder; it
serves segmentation and, on the encoder's pooled features, (multi-label) classification. Otherwise
``arch.name`` is a timm backbone (or ``small_cnn``), MML's ``arch=timm``: classification,
multi-label classification and regression, one linear head each. As in MML, neither serves every type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mml_core.config import MisconfigurationError
from mml_core.tasks.types import CLASSIFICATION, MULTILABEL, REGRESSION, SEGMENTATION

TIMM, SMP = "timm", "smp"
SUPPORTED: dict[str, tuple[str, ...]] = {
    TIMM: (CLASSIFICATION, MULTILABEL, REGRESSION),
    SMP: (CLASSIFICATION, MULTILABEL, SEGMENTATION),
}
# MML's arch=smp default encoder
DEFAULT_SMP_ENCODER = "tu-resnet34"
TIMM_PREFIX = "tu-"


def arch_kind(arch: Mapping[str, Any]) -> str:
    """``smp`` where ``arch.arch`` names a segmentation architecture, else ``timm``."""
    return SMP if arch.get("arch") else TIMM


def smp_encoder(arch: Mapping[str, Any]) -> str:
    """The encoder of an smp model (``arch.encoder``, MML's default ``tu-resnet34`` when unset)."""
    return arch.get("encoder") or DEFAULT_SMP_ENCODER


def describe(arch: Mapping[str, Any]) -> str:
    """The architecture in words, for messages."""
    if arch_kind(arch) == SMP:
        return f"arch.arch={arch['arch']} with encoder {smp_encoder(arch)} (segmentation_models_pytorch, MML's arch=smp)"
    return f"arch.name={arch['name']} (a timm backbone, MML's arch=timm)"


def check_task_types(cfg: Mapping[str, Any], task_types: Mapping[str, str]) -> None:
    """Raise :class:`MisconfigurationError` if the architecture cannot serve a task's type, or balanced
    sampling is asked for a task without single class labels."""
    arch = cfg["arch"]
    kind = arch_kind(arch)
    for task, type_name in task_types.items():
        if type_name in SUPPORTED[kind]:
            continue
        fix = (
            "Segment with segmentation_models_pytorch: --config 'arch={arch: unet, encoder: resnet18}' (MML's arch=smp)."
            if type_name == SEGMENTATION
            else "Use a timm backbone for it: set arch.arch=null (arch.name names the backbone), or train it in an "
            "experiment of its own."
        )
        raise MisconfigurationError(
            f"Task '{task}' is {type_name}, which {describe(arch)} cannot serve (as in MML): it serves "
            f"{', '.join(SUPPORTED[kind])}. {fix}"
        )
    if cfg["sampling"]["balanced"]:
        others = {t: k for t, k in task_types.items() if k != CLASSIFICATION}
        if others:
            task, type_name = next(iter(others.items()))
            raise MisconfigurationError(
                f"sampling.balanced draws each class equally often, which needs one class per sample; task '{task}' is "
                f"{type_name}. Set sampling.balanced=false."
            )
