"""Build objects from ``{_target_: import.path, **kwargs}`` specs, as MML configs write them."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

# MML configs name Lightning classes under the unified ``lightning`` package; this project depends
# on the standalone ``pytorch_lightning`` distribution, which holds the same classes.
_ALIASES = {"lightning.pytorch.": "pytorch_lightning.", "lightning.fabric.": "lightning_fabric."}


def locate(path: str) -> Any:
    """Import ``package.module.Attr`` (or ``package.module:Attr``) and return the attribute."""
    for old, new in _ALIASES.items():
        if path.startswith(old):
            try:
                importlib.import_module(old.rstrip("."))
            except ImportError:
                path = new + path[len(old):]
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise ValueError(f"'{path}' is not an import path; write it as package.module.ClassName.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"Cannot import '{module_name}' for _target_ '{path}': {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ValueError(f"Module '{module_name}' has no attribute '{attr}' (from _target_ '{path}').") from exc


def instantiate(spec: Mapping, *args: Any, **kwargs: Any) -> Any:
    """Call ``spec['_target_']`` with the spec's other keys plus ``kwargs`` (kwargs win).

    Nested specs with a ``_target_`` are built first, so ``{_target_: A, b: {_target_: B}}`` works
    as with Hydra. ``_partial_: true`` returns a ``functools.partial`` instead of calling.
    """
    if OmegaConf.is_config(spec):
        spec = OmegaConf.to_container(spec, resolve=True)
    spec = dict(spec)
    target = spec.pop("_target_")
    partial = bool(spec.pop("_partial_", False))
    params = {k: _build(v) for k, v in spec.items()}
    params.update(kwargs)
    factory = locate(target)
    if partial:
        return functools.partial(factory, *args, **params)
    return factory(*args, **params)


def _build(value: Any) -> Any:
    if isinstance(value, Mapping) and "_target_" in value:
        return instantiate(value)
    if isinstance(value, Mapping):
        return {k: _build(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_build(v) for v in value]
    return value
