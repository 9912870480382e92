"""``mml-snake [MODE] [OVERRIDE ...] [SNAKEMAKE OPTION ...]``: compose, validate, write, run Snakemake.

One config reaches the jobs whichever way it was given: the command line composes it with Hydra
(:mod:`mml_core.config.compose`), validates it as the Snakefile does, writes it where the jobs of
its plan read it (``results/<proj>/configs/<hash>.json``, on the working directory's file system,
so SLURM jobs find it too) and runs the repository's Snakefile in this process with
``--configfile`` of that file and the default profile. ``snakemake --configfile`` of the same file
therefore plans the same steps with the same rerun decisions.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mml_core.cli.arguments import is_dry_run, split
from mml_core.cli.usage import PROGRAM, TARGET_MODES, usage
from mml_core.config import ConfigError
from mml_core.config.compose import compose_config, config_groups
from mml_core.config.loading import load_schema
from mml_core.config.mml_keys import UNSUPPORTED, UNSUPPORTED_MODES
from mml_core.jobs.workflow import run_snakemake
from mml_core.schedulers.plan import write_config_file

logger = logging.getLogger(PROGRAM)


def _config_words() -> set[str]:
    """First components of config keys and group names: what marks a word as an override."""
    groups = {group.split("/")[0] for group in config_groups()}
    return set(load_schema()["properties"]) | groups | {key.split(".")[0] for key in UNSUPPORTED} | {"continue"}


def _mode_overrides(mode: str | None) -> list[str]:
    """MML's first word: an option of the mode group, a mode that is a Snakemake target, or refused."""
    if mode is None or mode in TARGET_MODES:
        return []
    if mode in config_groups().get("mode", []):
        return [f"mode={mode}"]
    if mode in UNSUPPORTED_MODES:
        raise ConfigError(f"MML mode {mode} is not supported by mml_core: {UNSUPPORTED_MODES[mode]}.")
    known = [*config_groups().get("mode", []), *TARGET_MODES]
    raise ConfigError(f"Unknown mode '{mode}': use one of {', '.join(known)} as the first word ({PROGRAM} --help).")


def _check_pp(cfg: DictConfig) -> None:
    if cfg.preprocessing.id == "none" or not cfg.preprocessing.pipeline:
        raise ConfigError(
            "Mode pp writes the tasks preprocessed by a preprocessing group option; choose one, e.g. "
            f"{PROGRAM} pp preprocessing=size224 task_list=[...] --cores 2."
        )


def _show_messages() -> None:
    """This program's messages and the config's (e.g. MML keys ignored) on stderr. Not through the root
    logger: Snakemake, running in this process, shows its own messages."""
    for name in (PROGRAM, "mml_core.config"):
        shown = logging.getLogger(name)
        if not shown.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(f"{PROGRAM}: %(message)s"))
            shown.addHandler(handler)
            shown.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``mml-snake`` command line; the exit status (0: success)."""
    _show_messages()
    try:
        line = split(sys.argv[1:] if argv is None else argv, _config_words())
        if line.help:
            sys.stdout.write(usage())
            return 0
        cfg = compose_config(_mode_overrides(line.mode) + line.overrides, line.configfiles)
        if line.mode in TARGET_MODES:
            _check_pp(cfg)
    except ConfigError as exc:
        logger.error("%s", exc)
        return 1
    if line.show_config:
        sys.stdout.write(OmegaConf.to_yaml(cfg))
        return 0
    with tempfile.TemporaryDirectory(prefix="mml-snake-") as scratch:
        # a dry run writes nothing: its config goes to a temporary folder
        dry = is_dry_run(line.snakemake)
        try:
            path = write_config_file(OmegaConf.to_container(cfg), Path(scratch if dry else line.directory or "."))
        except OSError as exc:
            logger.error("Cannot write the composed config: %s. Run where results/ can be written.", exc)
            return 1
        if not dry:
            logger.info("config: %s (snakemake --configfile %s plans the same)", path, path)
        targets = [*line.targets, *([line.mode] if line.mode in TARGET_MODES else [])]
        return 0 if run_snakemake(["--configfile", str(path.resolve()), *line.snakemake, *targets]) else 1
