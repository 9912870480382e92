"""``mml-snake``: MML's command line (mode, Hydra overrides, config groups) driving the Snakemake pipeline."""

from mml_core.cli.main import main

__all__ = ["main"]
