"""The search space: config keys and the values a sweep gives them (MML's ``search_space`` group).

Values are written in Hydra's sweeper syntax, as MML's ``search_space`` files do::

    optimizer.lr: interval(0.0001, 0.2)        # Optuna only: any float in between
    optimizer.weight_decay: tag(log, interval(1e-6, 1e-2))   # log scale
    sampling.batch_size: choice(32, 64, 128)   # or a YAML list: [32, 64, 128]
    trainer.max_epochs: range(2, 10, 2)        # 2, 4, 6, 8 (stop excluded, as Python's range)
    arch.drop_rate: int(interval(0, 3))        # integers in between (Optuna only)

A nested mapping (``{optimizer: {lr: ...}}``) is the same as the dotted key; a choice between
mappings (``[{name: resnet18}, {name: small_cnn}]``) merges the chosen one into the key's section.
Each argument is read as YAML. Nothing here imports Optuna until a distribution is asked for.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from mml_core.config import ConfigError

# keys no trial can set differently from the others, and why
FIXED_KEYS = {
    "proj": "every trial is an experiment under results/<proj>/trials/; sweep inside one proj",
    "data_dir": "every trial reads the same data root; sweep task_list or preprocessing instead",
    "resources": "resources belong to the step kinds of the rules, which all trials share",
    "search_space": "the search space describes the sweep itself",
    "hpo": "the hpo settings describe the sweep itself",
    "use_best_params": "it picks the params of a finished sweep for a single experiment",
    "trial": "the sweep names each trial itself",
}
_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.S)
_FUNCTIONS = ("choice", "range", "interval", "tag", "int")
# a dotted config key: names of letters, digits, "_" and "-"
_KEY = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
# Optuna's categorical choices hold these types only
_CATEGORICAL = (type(None), bool, int, float, str)


class SearchSpaceError(ConfigError):
    """The search space names a key or values no sweep can use; the message names the key and the fix."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One swept key: its values (``choice``, ``range``) or its bounds (``interval``)."""

    key: str
    kind: str
    values: tuple[Any, ...]
    log: bool = False
    integer: bool = False
    step: float | int | None = None
    # as the search space wrote it (records and tables show this)
    source: str = ""

    @property
    def grid_values(self) -> tuple[Any, ...]:
        """Every value of the key, in order (a grid sweep's trials take each one)."""
        if self.kind == "interval":
            raise SearchSpaceError(
                f"search_space key '{self.key}' is an interval, which has no finite list of values for a grid: "
                "use choice(...) or range(...), or an Optuna sampler (hpo.sampler: tpe or random)."
            )
        return self.values

    def distribution(self) -> Any:
        """The Optuna distribution of this key (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "interval":
            low, high = self.values
            if self.integer:
                return IntDistribution(int(low), int(high), log=self.log)
            return FloatDistribution(float(low), float(high), log=self.log)
        if self.kind == "range":
            low, high = self.values[0], self.values[-1]
            if all(isinstance(v, int) for v in self.values):
                return IntDistribution(low, high, step=int(self.step or 1))
            return FloatDistribution(float(low), float(high), step=float(self.step or 1))
        odd = [v for v in self.values if not isinstance(v, _CATEGORICAL)]
        if odd:
            raise SearchSpaceError(
                f"search_space key '{self.key}': Optuna's choices must be numbers, strings, booleans or null, "
                f"got {odd[0]!r}. Sweep mappings and lists with hpo.sampler: grid, or choose between names."
            )
        return CategoricalDistribution(list(self.values))


def _split_args(text: str) -> list[str]:
    """Top-level, comma-separated arguments of a call (brackets and quotes nest)."""
    args, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    last = "".join(current).strip()
    if last or args:
        args.append(last)
    return args


def _literal(key: str, text: str) -> Any:
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError as exc:
        raise SearchSpaceError(f"search_space key '{key}': cannot read the value '{text}' ({exc}).") from None
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            return float(value)
        except ValueError:
            return value
    return value


def _number(key: str, text: str, function: str) -> float | int:
    value = _literal(key, text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SearchSpaceError(f"search_space key '{key}': {function}(...) takes numbers, got '{text}'.")
    return value


def _range_values(key: str, start: float, stop: float, step: float) -> tuple[Any, ...]:
    if step == 0:
        raise SearchSpaceError(f"search_space key '{key}': range(...) needs a step other than 0.")
    # decimal steps: range(0, 1, 0.1) gives 0.3, not 0.30000000000000004
    begin, end, delta = (decimal.Decimal(repr(v)) for v in (start, stop, step))
    count = max(0, int(-((begin - end) // delta)))
    integer = all(isinstance(v, int) for v in (start, stop, step))
    return tuple(int(begin + i * delta) if integer else float(begin + i * delta) for i in range(count))


def _parse_call(key: str, name: str, body: str) -> Dimension:
    args = _split_args(body)
    if name == "choice":
        return Dimension(key, "choice", tuple(_literal(key, a) for a in args))
    if name == "range":
        if len(args) not in (2, 3):
            raise SearchSpaceError(
                f"search_space key '{key}': write range(start, stop) or range(start, stop, step)."
            )
        start, stop, *step = (_number(key, a, "range") for a in args)
        step_value = step[0] if step else 1
        return Dimension(key, "range", _range_values(key, start, stop, step_value), step=step_value)
    if name == "interval":
        if len(args) != 2:
            raise SearchSpaceError(f"search_space key '{key}': write interval(low, high).")
        low, high = (_number(key, a, "interval") for a in args)
        if not low < high:
            raise SearchSpaceError(
                f"search_space key '{key}': interval({low}, {high}) is empty; low must be below high."
            )
        return Dimension(key, "interval", (low, high))
    inner = parse_value(key, args[-1]) if args else None
    if name == "tag":
        if len(args) != 2 or args[0] != "log" or inner is None or inner.kind != "interval":
            raise SearchSpaceError(
                f"search_space key '{key}': write tag(log, interval(low, high)) for a log scale."
            )
        if inner.values[0] <= 0:
            raise SearchSpaceError(f"search_space key '{key}': a log scale needs a positive low bound.")
        return dataclasses.replace(inner, log=True)
    if len(args) != 1 or inner is None or inner.kind != "interval":
        raise SearchSpaceError(
            f"search_space key '{key}': write int(interval(low, high)) for integers in between."
        )
    return dataclasses.replace(inner, integer=True)


def parse_value(key: str, value: Any) -> Dimension:
    """The dimension ``value`` describes (a Hydra sweep expression, a YAML list, or one fixed value)."""
    if isinstance(value, list):
        dimension = Dimension(key, "choice", tuple(value))
    elif isinstance(value, str) and _CALL.match(value):
        name, body = _CALL.match(value).groups()
        if name not in _FUNCTIONS:
            raise SearchSpaceError(
                f"search_space key '{key}': unknown sweep function '{name}(...)'. Use choice(...), range(...), "
                "interval(...), tag(log, interval(...)) or int(interval(...))."
            )
        dimension = _parse_call(key, name, body)
    else:
        dimension = Dimension(key, "choice", (_literal(key, value) if isinstance(value, str) else value,))
    dimension = dataclasses.replace(dimension, source=value if isinstance(value, str) else json.dumps(value))
    if not dimension.values:
        raise SearchSpaceError(
            f"search_space key '{key}' has no values ({value!r} is empty): give at least one, e.g. choice(0.1, 0.01)."
        )
    return dimension


def flatten(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted keys: ``{a: {b: 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in space.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{full}."))
        else:
            flat[full] = value
    return flat


def parse_space(space: Mapping[str, Any]) -> list[Dimension]:
    """Every dimension of ``search_space``, sorted by key (the order names and records use)."""
    dimensions = []
    for key, value in sorted(flatten(space).items()):
        if not _KEY.match(key):
            raise SearchSpaceError(
                f"search_space key '{key}' is not a dotted config key such as optimizer.lr. Inside a YAML flow "
                "mapping ({...}) a sweep expression is cut at its commas: write search_space in block style "
                '(one key per line) or quote the expression, e.g. {optimizer.lr: "interval(0.001, 0.1)"}.'
            )
        top = key.split(".", 1)[0]
        if top in FIXED_KEYS:
            raise SearchSpaceError(
                f"search_space key '{key}' cannot vary between trials: {FIXED_KEYS[top]}. Remove it from search_space."
            )
        dimensions.append(parse_value(key, value))
    return dimensions
