"""Compose an experiment config with Hydra from config groups and MML-style overrides.

The primary config is built here rather than written as a file, from what lies in ``config/``:

1. ``config/config.yaml``: every key's default, exactly what a plain ``snakemake`` run reads;
2. one defaults-list entry per config group (each folder of ``config/`` holding option files,
   nested folders such as ``loss/cls`` included), with no option selected: ``arch=timm`` selects
   one (merged over the defaults, as Hydra does) without MML users having to write ``+arch=timm``;
3. experiment files (``--configfile``), in order, so they win over the groups' options;
4. the overrides, in Hydra's grammar (``key=value``, ``+key=value``, ``++key=value``, ``~key``,
   ``group=option``, lists ``[a,b]``).

Keys the schema takes (``trainer.limit_train_batches``) need no ``+``; MML keys mml_core lacks pass
on to :mod:`~mml_core.config.mml_keys`, which names them; in open mappings (an optimizer's
arguments) a new key needs ``+`` as in MML, so a typo does not pass silently. Removing a key of
``config/config.yaml`` (``~trainer.max_epochs``) is refused: Snakemake merges that file under every
config, so the key would come back. The result is validated by :func:`~mml_core.config.from_snakemake`:
the same config, hash and plan as ``snakemake --configfile`` of the written file.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mml_core.config.errors import ConfigError
from mml_core.config.loading import DEFAULT_CONFIG_PATH, default_values, from_snakemake, key_status, select
from mml_core.config.mml_keys import UNSUPPORTED

CONFIG_DIR = DEFAULT_CONFIG_PATH.parent
_PRIMARY = "_mml_core_primary"
_GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


@functools.cache
def config_groups() -> dict[str, list[str]]:
    """Config group -> its options: every folder below ``config/`` holding ``<option>.yaml`` files."""
    groups = {}
    for folder in sorted(p for p in CONFIG_DIR.rglob("*") if p.is_dir()):
        options = sorted(f.stem for f in folder.glob("*.yaml"))
        if options:
            groups[folder.relative_to(CONFIG_DIR).as_posix()] = options
    return groups


def _has_key(config: Any, dotted: str) -> bool:
    try:
        select(config, dotted)
    except (KeyError, TypeError):
        return False
    return True


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except OverrideParseException as exc:
            reason = str(exc).splitlines()[0]
            raise ConfigError(
                f"Cannot read the override '{text}' ({reason}). Write key=value, group=option, +key=value or "
                f"~key; lists as [a,b]; quote values with spaces or special characters ({_GRAMMAR})."
            ) from None
    return parsed


def _compose(overrides: Sequence[str], configfiles: Sequence[Path]) -> DictConfig:
    """Hydra's composition of the primary config described in the module docstring."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from hydra.errors import HydraException

    store = ConfigStore.instance()
    files = []
    for i, path in enumerate(configfiles):
        try:
            node = OmegaConf.load(path)
        except FileNotFoundError:
            raise ConfigError(f"Experiment file {path} (--configfile) does not exist.") from None
        except Exception as exc:  # yaml's and omegaconf's parse errors
            raise ConfigError(f"Experiment file {path} (--configfile) is not valid YAML: {exc}") from None
        name = f"_mml_core_file_{i}"
        store.store(name=name, node=node)
        files.append(name)
    defaults = [DEFAULT_CONFIG_PATH.stem, *({group: None} for group in config_groups()), *files, "_self_"]
    store.store(name=_PRIMARY, node={"defaults": defaults})
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            return compose(_PRIMARY, overrides=list(overrides))
    except HydraException as exc:
        # Hydra's message, without the search path and the name of the generated primary config
        text = str(exc).split("\nConfig search path")[0].replace(f"In '{_PRIMARY}': ", "").strip()
        raise ConfigError(f"{text}\n(config groups and their options: mml-snake --help)") from None


def compose_config(overrides: Sequence[str] = (), configfiles: Sequence[str | Path] = ()) -> DictConfig:
    """The validated config of ``config/config.yaml``, group options, experiment files and overrides."""
    groups = config_groups()
    parsed = _parse(overrides)
    chosen = [o.input_line for o in parsed if o.key_or_group in groups]
    base = _compose(chosen, [Path(f) for f in configfiles])
    final = []
    for override in parsed:
        key, text = override.key_or_group, override.input_line
        if override.is_delete() and _has_key(default_values(), key):
            raise ConfigError(
                f"'{text}' removes a key of config/config.yaml; every such key is required (Snakemake merges that "
                f"file under every config). Set a value instead, e.g. {key}=null where null is allowed."
            )
        plain_set = not (override.is_delete() or override.is_add() or override.is_force_add() or key in groups)
        if plain_set and not _has_key(base, key) and (key_status(key) != "free" or key in UNSUPPORTED):
            # keys the schema describes (or rejects, with a better message than Hydra's) need no '+'
            text = "++" + text
        final.append(text)
    composed = _compose(final, [Path(f) for f in configfiles])
    try:
        plain = OmegaConf.to_container(composed, resolve=True, throw_on_missing=True)
    except Exception as exc:  # omegaconf's MissingMandatoryValue / InterpolationResolutionError
        key = getattr(exc, "full_key", "") or "a key"
        raise ConfigError(
            f"Config key {key} has no value ({type(exc).__name__}: {str(exc).splitlines()[0]}); set it on the "
            f"command line, e.g. {key}=<value>."
        ) from None
    return from_snakemake(plain)
