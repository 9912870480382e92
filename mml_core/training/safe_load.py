"""Checkpoint and model files are loaded as data, never as code (torch only: prediction imports it).

Results folders are shared on clusters, and unpickling a planted ``last.ckpt`` or ``model.pt`` could
run anything, so every such file is read with ``torch.load(weights_only=True)``: tensors, containers
and plain values only. A Lightning 2.6 checkpoint of the callbacks here holds nothing else, so the
allow-list of further classes (:data:`SAFE_GLOBALS`) is empty; a callback whose state needs one
adds it there.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

# classes beyond tensors, containers and plain values that checkpoints may hold (torch.serialization.safe_globals)
SAFE_GLOBALS: list[Any] = []


def load_checkpoint(path: Path, mmap: bool = False) -> Any:
    """The content of checkpoint or model file ``path``, loaded as data only (``weights_only=True``).

    ``mmap`` reads only the zip directory and the small records: cheap even for large models.
    Raises :class:`pickle.UnpicklingError` for a file that holds anything but data (it could run
    code), other exceptions for truncated or foreign files.
    """
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def load_problem(exc: Exception) -> str:
    """Why loading a checkpoint or model file failed with ``exc``, in a few words."""
    if isinstance(exc, pickle.UnpicklingError):
        return (
            "holds objects other than tensors and plain data, which could run code when loaded (refused by "
            f"torch.load(weights_only=True): {str(exc).splitlines()[0][:120]})"
        )
    return f"cannot be read ({type(exc).__name__}: {str(exc)[:120]})"
