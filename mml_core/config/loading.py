"""Load, coerce and validate the experiment config against the JSON schema."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mml_core.config.errors import ConfigError, MisconfigurationError  # noqa: F401 (MisconfigurationError: re-exported)
from mml_core.config.mml_keys import translate_mml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "config.yaml"
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

_FIX = "Fix it in your --configfile YAML or --config override (defaults: config/config.yaml)."


@functools.cache
def load_schema() -> dict:
    """The config JSON schema (parsed once per process)."""
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _types_of(schema: Mapping) -> set[str]:
    types = schema.get("type", [])
    return {types} if isinstance(types, str) else set(types)


def _matches(value: Any, types: set[str]) -> bool:
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    return any(checks[t](value) for t in types if t in checks)


def _resolve(schema: Mapping | None, value: Any) -> Mapping | None:
    """``schema`` with a ``$ref`` looked up and, for ``oneOf``, the branch of ``value``'s kind."""
    if schema is None:
        return None
    if "$ref" in schema:
        node: Any = load_schema()
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    if "oneOf" in schema:
        kind = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else None
        for branch in schema["oneOf"]:
            if kind in _types_of(branch):
                return branch
    return schema


def _subschema(schema: Mapping, key: str) -> Mapping | None:
    props = schema.get("properties", {})
    if key in props:
        return props[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def _free_form(value: Any) -> Any:
    """Snakemake's strings in places the schema leaves open (transform and criterion arguments,
    callback arguments, optimizer keywords ...): the YAML value they spell ('0.5' -> 0.5)."""
    if isinstance(value, dict):
        return {k: _free_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_free_form(v) for v in value]
    if not isinstance(value, str):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            return float(value)
        except ValueError:
            return value
    return _free_form(parsed)


def coerce(value: Any, schema: Mapping | None) -> Any:
    """Convert strings to the schema's type where the schema does not allow a string.

    Snakemake's ``--config 'trainer={max_epochs: 3}'`` delivers every nested scalar as a string
    ('3', 'true', '[a, b]', 'null'); YAML parsing gives the intended value. Values that do not parse to an
    allowed type are left alone so that validation reports them with their key; strings where the
    schema leaves the type open are read as YAML (:func:`_free_form`).
    """
    schema = _resolve(schema, value)
    if schema is None:
        return _free_form(value)
    if isinstance(value, dict):
        return {k: coerce(v, _subschema(schema, k)) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [coerce(v, items if isinstance(items, Mapping) else None) for v in value]
    types = _types_of(schema)
    if isinstance(value, str) and types & {"array", "object"} and value.strip()[:1] in ("[", "{"):
        parsed = _parse_flow(value)
        if _matches(parsed, types & {"array", "object"}):
            return coerce(parsed, schema)
    if isinstance(value, str) and "null" in types and value in ("null", "Null", "NULL", "~"):
        return None
    if isinstance(value, str) and types and "string" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if _matches(parsed, types):
            return coerce(parsed, schema)
        if "number" in types:  # YAML 1.1 reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
    return value


_TAGGED = re.compile(r"""([^\s,\[\]{}:'"]*\?[^\s,\[\]{}:'"]*)""")


def _parse_flow(value: str) -> Any:
    """Parse a YAML flow list or mapping (``[a, b]``, ``{name: x}``), or return None.

    MML task names with tags (``sk_digits+nested?1``) break PyYAML's flow parser on the '?', so
    such plain words are quoted before a second attempt.
    """
    for text in (value, _TAGGED.sub(r'"\1"', value)):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            continue
    return None


def _key_path(error) -> str:
    return ".".join(str(p) for p in error.absolute_path)


def _describe(error, root_schema: Mapping) -> str:
    key = _key_path(error)
    where = f"config key '{key}'" if key else "the config"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        full = ".".join(filter(None, [key, unknown[0]]))
        return (
            f"Unknown config key '{full}'. Allowed keys under '{key or '<top level>'}': "
            f"{', '.join(allowed)}. {_FIX}"
        )
    if error.validator == "required":
        missing = error.message.split("'")[1]
        full = ".".join(filter(None, [key, missing]))
        return f"Config key '{full}' is missing. Every key of config/config.yaml is required. {_FIX}"
    if error.validator == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return (
            f"{where[0].upper()}{where[1:]} must be {wanted}, got {error.instance!r} "
            f"({type(error.instance).__name__}). {_FIX}"
        )
    if error.validator == "enum":
        return f"{where[0].upper()}{where[1:]} must be one of {error.validator_value}, got {error.instance!r}. {_FIX}"
    if error.validator == "pattern" and error.schema.get("description"):
        return f"{where[0].upper()}{where[1:]} is {error.instance!r}: {error.schema['description']} {_FIX}"
    return f"{where[0].upper()}{where[1:]} is invalid: {error.message}. {_FIX}"


def _non_finite(value: Any, key: str = "") -> tuple[str, float] | None:
    """The first (dotted key, value) in ``value`` that is a NaN or infinite number, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return key, value
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{key}.{k}" if key else str(k))
        if found:
            return found
    return None


def validate(config: Mapping) -> None:
    """Raise :class:`ConfigError` naming the first offending key, what is allowed, and the fix.

    Besides the schema: no number may be NaN or infinite (JSON schema's bounds let NaN pass, and a
    job would fail on it only once it runs), and the checks across keys in :mod:`.checks`.
    """
    import jsonschema

    from mml_core.config.checks import check_trainer

    schema = load_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        # report the shallowest problem first: an unknown top-level key explains nested noise
        error = min(errors, key=lambda e: (len(e.absolute_path), e.validator != "additionalProperties"))
        raise ConfigError(_describe(error, schema))
    found = _non_finite(config)
    if found:
        raise ConfigError(
            f"Config key '{found[0]}' is {found[1]}; numbers in the config must be finite (a NaN or infinite "
            f"value only fails once a job uses it). Write a finite number. {_FIX}"
        )
    check_trainer(config)


def key_status(dotted: str) -> str:
    """How the schema treats the dotted key: ``known`` (described), ``free`` (inside an open mapping
    such as the optimizer's arguments: any key is allowed) or ``unknown`` (rejected)."""
    node: Mapping | None = load_schema()
    for part in dotted.split("."):
        node = _resolve(node, None)
        if node is None:
            return "free"
        props = node.get("properties", {})
        if part in props:
            node = props[part]
            continue
        extra = node.get("additionalProperties", True)
        if extra is False:
            return "unknown"
        node = extra if isinstance(extra, Mapping) else None
    return "known" if node is not None else "free"


def from_snakemake(config: Mapping) -> DictConfig:
    """Coerce and validate a merged config dict (Snakemake's ``config``) into a ``DictConfig``.

    MML's spellings and keys are read first (:mod:`~mml_core.config.mml_keys`). Keys the dict lacks
    take the default experiment's values: Snakemake replaces a whole section when its ``--config``
    value is a string it could not parse as YAML (tagged names such as
    ``'pivot={name: t, tags: +nested?1}'``), and the section's other keys must not vanish.
    """
    plain = translate_mml(copy.deepcopy(_to_plain(config)), lambda key: key_status(key) != "unknown")
    plain = _fill_defaults(coerce(plain, load_schema()), default_values())
    validate(plain)
    try:
        cfg = OmegaConf.create(plain)
        # resolve every ${...} now, so an interpolation that cannot be resolved is named here
        OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        key = exc.full_key or ""
        node: Any = plain
        for part in re.findall(r"[^.\[\]]+", key):  # "pivot.name", "task_list[1]"
            node = node[int(part)] if isinstance(node, list) else node[part]
        value = repr(node) if key else "a value"
        raise ConfigError(
            f"Config key '{key}' holds {value}, which OmegaConf reads as an interpolation ${{...}} and cannot resolve "
            f"({type(exc).__name__}: {str(exc).splitlines()[0]}). Remove the '${{' (task and project names cannot "
            f"hold it), write '\\${{' for a literal one, or refer to an existing key, e.g. ${{seed}}. {_FIX}"
        ) from None
    return cfg


@functools.cache
def _default_text() -> str:
    return DEFAULT_CONFIG_PATH.read_text()


def default_values() -> dict:
    """The default experiment, ``config/config.yaml``, as plain containers (a fresh copy)."""
    return yaml.safe_load(_default_text())


def _fill_defaults(value: Any, default: Any) -> Any:
    """``value`` with the keys it lacks taken from ``default``, recursively for mappings."""
    if isinstance(value, dict) and isinstance(default, dict):
        return {**default, **{k: _fill_defaults(v, default.get(k)) for k, v in value.items()}}
    return value


def _to_plain(config: Any) -> Any:
    if isinstance(config, (DictConfig,)) or OmegaConf.is_config(config):
        return OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return {k: _to_plain(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_to_plain(v) for v in config]
    return config


def load_config(
    overrides: Mapping | Sequence[str] | None = None,
    configfiles: Sequence[str | Path] = (),
) -> DictConfig:
    """The default experiment merged (omegaconf) with experiment files and overrides.

    ``overrides`` is a nested mapping (``{"trainer": {"max_epochs": 3}}``) or MML-style dotted
    strings (``["trainer.max_epochs=3"]``). This is the Python twin of
    ``snakemake --configfile ... --config ...``.
    """
    layers = [OmegaConf.load(DEFAULT_CONFIG_PATH)]
    layers += [OmegaConf.load(Path(f)) for f in configfiles]
    if overrides:
        if isinstance(overrides, Mapping):
            layers.append(OmegaConf.create(_to_plain(overrides)))
        else:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
    merged = OmegaConf.merge(*layers)
    return from_snakemake(OmegaConf.to_container(merged, resolve=True))


def select(cfg: Mapping, dotted: str) -> Any:
    """Value at a dotted key (``"trainer.max_epochs"``) of a plain or omegaconf mapping."""
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def config_hash(obj: Any) -> str:
    """Stable short hash of a config slice (canonical JSON), used for provenance and staleness."""
    text = json.dumps(_to_plain(obj), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
