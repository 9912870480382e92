"""Split an ``mml-snake`` command line into MML's mode, Hydra overrides and Snakemake's own arguments.

The grammar is MML's, ``mml-snake [MODE] [OVERRIDE ...]``, followed or interleaved by Snakemake's
options and targets (``--cores 2``, ``-n``, ``--profile DIR``, ``--report FILE``, ``pp``). Which
option takes how many values is read from Snakemake's own argument parser. A word is an override
when it starts with ``+`` or ``~`` or has the form ``key=value``; after an option that takes several
values (``--resources gpu=2``, ``--forcerun a b``) a ``key=value`` word is an override only when its
key names a config key or group, so that Snakemake's ``name=value`` values stay with their option.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Collection, Sequence
from typing import Any

from mml_core.config import ConfigError

# Snakemake options the command line handles itself
CONFIGFILE = ("--configfile", "--configfiles")
DIRECTORY = ("-d", "--directory")
SHOW_CONFIG = "--cfg"
HELP = ("-h", "--help")
REFUSED = {
    "--config": "write config values as overrides (key=value, e.g. trainer.max_epochs=3) instead of --config",
    "-m": "sweeps (MML's --multirun) are configured with the sweep/hpo keys, not with --multirun",
    "--multirun": "sweeps (MML's --multirun) are configured with the sweep/hpo keys, not with --multirun",
}
_OVERRIDE = re.compile(r"^(?:\+\+|\+|~)?([A-Za-z_][\w\-]*)(?:[./@][^=]*)?=")


@dataclasses.dataclass
class CommandLine:
    """One ``mml-snake`` call, split."""

    mode: str | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)
    configfiles: list[str] = dataclasses.field(default_factory=list)
    snakemake: list[str] = dataclasses.field(default_factory=list)
    targets: list[str] = dataclasses.field(default_factory=list)
    directory: str | None = None
    show_config: bool = False
    help: bool = False


@functools.cache
def _snakemake_parser() -> Any:
    from snakemake.cli import get_argument_parser

    return get_argument_parser()


def _arity() -> dict[str, int | str | None]:
    """Snakemake's options -> argparse nargs (0: a flag, None: one value, '?', '*', '+')."""
    return {option: action.nargs for option, action in _snakemake_parser()._option_string_actions.items()}


def is_dry_run(snakemake_args: Sequence[str]) -> bool:
    """Whether Snakemake only plans with these arguments (``-n``, ``--dry-run``, ``-np`` ...)."""
    parsed, _ = _snakemake_parser().parse_known_args(list(snakemake_args))
    return bool(parsed.dryrun)


def is_override(word: str, keys: Collection[str] | None = None) -> bool:
    """Whether ``word`` is a Hydra override; with ``keys``, only one whose first key component is among them."""
    if word.startswith(("+", "~")):
        return True
    match = _OVERRIDE.match(word)
    return bool(match) and (keys is None or match.group(1) in keys)


def split(argv: Sequence[str], keys: Collection[str]) -> CommandLine:
    """Split ``argv`` (without the program name); ``keys``: top-level config keys and config groups."""
    line = CommandLine()
    words = list(argv)
    if words and not words[0].startswith(("-", "+", "~")) and "=" not in words[0]:
        line.mode = words.pop(0)
    arity = _arity()
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-") or word == "-":
            if is_override(word):
                line.overrides.append(word)
            else:
                line.targets.append(word)
            continue
        option, has_value, value = word.partition("=")
        if option in REFUSED:
            raise ConfigError(f"{option}: {REFUSED[option]}.")
        if option in HELP:
            line.help = True
            continue
        if option == SHOW_CONFIG:
            if not has_value and i < len(words) and words[i] in ("job", "all", "hydra"):
                i += 1
            line.show_config = True
            continue
        nargs = arity.get(option, 0)
        values = [value] if has_value else []
        if not has_value and nargs is None and i < len(words):
            values, i = [words[i]], i + 1
        elif not has_value and nargs == "?" and i < len(words) and not words[i].startswith("-"):
            if not is_override(words[i]):
                values, i = [words[i]], i + 1
        elif not has_value and nargs in ("*", "+"):
            while i < len(words) and not words[i].startswith("-") and not is_override(words[i], keys):
                values.append(words[i])
                i += 1
        if option in CONFIGFILE:
            line.configfiles += values
            continue
        if option in DIRECTORY and values:
            line.directory = values[0]
        line.snakemake += [option, *values]
    return line
