"""Trials: what a sweep's trials are called and the config each one runs with.

A trial is an experiment of its own: the sweep's config with the trial's params set, an empty
``search_space`` and ``trial: {name, number}``, so its results go to
``results/<proj>/trials/<name>/`` (:class:`~mml_core.schedulers.steps.StepLayout`). Names are
stable: a grid trial is named by its params (``optimizer.lr=0.01+sampling.batch_size=32``; adding
values to the space adds trials and renames none), an Optuna trial by its number in the study
(``trial-007``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mml_core.sweeps.space import Dimension, SearchSpaceError, flatten

# a value appears in a grid trial's name as it is when it is short and safe in a path and in a
# Snakemake/SLURM wildcard (no "/", ",", "+", "=" or quotes); else as a hash of its JSON
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_MAX_NAME = 120


@dataclasses.dataclass(frozen=True)
class Trial:
    """One trial: its name, its Optuna trial number (None on a grid) and the values it sets."""

    name: str
    number: int | None
    params: Mapping[str, Any]


def _digest(value: Any, length: int) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def _label(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return (
        text if _SAFE_VALUE.match(text) and not isinstance(value, (dict, list)) else f"h{_digest(value, 8)}"
    )


def grid_name(params: Mapping[str, Any]) -> str:
    """``key=value+key=value`` by key; a hash of the params where that would be too long."""
    name = "+".join(f"{key}={_label(params[key])}" for key in sorted(params))
    return name if len(name) <= _MAX_NAME else f"h{_digest(dict(params), 16)}"


def optuna_name(number: int) -> str:
    """The name of Optuna trial ``number``."""
    return f"trial-{number:03d}"


def grid_trials(dimensions: Sequence[Dimension]) -> list[Trial]:
    """Every combination of the dimensions' values, one trial each (in the order of the keys' values)."""
    keys = [d.key for d in dimensions]
    trials = [
        Trial(grid_name(params), None, params)
        for combo in itertools.product(*(d.grid_values for d in dimensions))
        for params in [dict(zip(keys, combo))]
    ]
    seen: dict[str, Trial] = {}
    for trial in trials:
        if trial.name in seen:
            raise SearchSpaceError(
                f"Two grid trials would share the name '{trial.name}' ({dict(seen[trial.name].params)} and "
                f"{dict(trial.params)}): their values print alike. Give the values distinct spellings."
            )
        seen[trial.name] = trial
    return trials


def set_key(config: dict[str, Any], key: str, value: Any) -> None:
    """Set the dotted ``key`` of a plain config to ``value``; a mapping value is merged key by key."""
    if isinstance(value, Mapping):
        for sub, leaf in flatten(value).items():
            set_key(config, f"{key}.{sub}", leaf)
        return
    node = config
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            raise SearchSpaceError(
                f"search_space key '{key}': config key '{section}' holds {child!r}, not a section with keys."
            )
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def trial_config(
    base: Mapping[str, Any], trial: Trial, callbacks: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The plain config trial ``trial`` runs with (validated by whoever builds its scheduler)."""
    config = copy.deepcopy(dict(base))
    for key, value in trial.params.items():
        set_key(config, key, value)
    config["cbs"] = {**config["cbs"], **(callbacks or {})}
    config["search_space"] = {}
    config["trial"] = {"name": trial.name, "number": trial.number}
    return config
