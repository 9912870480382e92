"""What a run records about its config: dotted keys, what it changed against the default experiment.

Hydra and MML write ``config.yaml`` (the resolved config) and ``overrides.yaml`` (what the command
line changed) beside every run; :func:`config_yaml` and :func:`overrides_yaml` are their texts here.
Overrides are written in MML's dotted ``key=value`` form (``trainer.max_epochs=3``) and computed
against ``config/config.yaml``, so they list what an experiment file and the command line changed
together; ``~key`` marks a default key the run does not have. :func:`flatten` gives the same dotted
keys to the experiment loggers (hyperparameters) and to the comparison of experiments.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mml_core.config.loading import default_values


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"max_epochs": 3}}`` -> ``{"trainer.max_epochs": 3}``; lists stay values, empty
    mappings vanish (they hold no setting)."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def in_default_order(cfg: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``cfg`` with its keys in the order of ``config/config.yaml`` (keys it adds come after), at every
    level: job configs travel as sorted JSON, people read them in the documented order."""
    defaults = default_values() if defaults is None else defaults
    keys = [k for k in defaults if k in cfg] + [k for k in cfg if k not in defaults]
    return {
        k: in_default_order(cfg[k], defaults[k] if isinstance(defaults.get(k), Mapping) else {})
        if isinstance(cfg[k], Mapping) else cfg[k]
        for k in keys
    }


def format_value(value: Any) -> str:
    """A value as it reads in a ``key=value`` override and in tables: YAML flow style, one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf, allow_unicode=True).strip()
    return text.removesuffix("...").strip()


def _covered(key: str, flat: Mapping[str, Any]) -> bool:
    """True if ``key`` or one of its parents is a key of ``flat`` (a section replaced by a scalar)."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in flat for i in range(1, len(parts) + 1))


def overrides(cfg: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> list[str]:
    """The keys of ``cfg`` that differ from ``defaults`` (the default experiment) as ``key=value``."""
    defaults = default_values() if defaults is None else defaults
    ours, base = flatten(in_default_order(cfg, defaults)), flatten(defaults)
    changed = [f"{key}={format_value(value)}" for key, value in ours.items() if key not in base or base[key] != value]
    removed = [f"~{key}" for key in base if not _covered(key, ours)]
    return changed + removed


def differing_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted keys whose value is not the same in all ``configs`` (absent counts as a value)."""
    flats = [flatten(cfg) for cfg in configs]
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    return [key for key in keys if len({format_value(flat[key]) if key in flat else None for flat in flats}) > 1]


def config_yaml(cfg: Mapping[str, Any]) -> str:
    """The resolved config as block-style YAML in the key order of ``config/config.yaml``."""
    return yaml.safe_dump(in_default_order(cfg), sort_keys=False, allow_unicode=True, width=100)


def overrides_yaml(
    cfg: Mapping[str, Any],
    configfiles: Sequence[str | Path] = (),
    command_line: Mapping[str, Any] | None = None,
    command: Sequence[str] = (),
) -> str:
    """``overrides.yaml``: the changed keys, the experiment files and ``--config`` values Snakemake was
    given, and the command that started the run (``command``, e.g. ``sys.argv``: with ``mml-snake`` its
    mode, Hydra overrides and experiment files, which reach Snakemake as one composed config file)."""
    record: dict[str, Any] = {
        "overrides": overrides(cfg),
        "configfiles": [str(path) for path in configfiles],
        "command_line": dict(command_line or {}),
    }
    if command:
        record["command"] = shlex.join([Path(command[0]).name, *command[1:]])
    header = (
        "# What this run changed against config/config.yaml (MML's key=value; ~key: a default key it lacks),\n"
        "# the experiment files and --config values Snakemake was given, and the command that started it.\n"
    )
    return header + yaml.safe_dump(record, sort_keys=False, allow_unicode=True, width=100)
