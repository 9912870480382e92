"""Experiment configuration: load, coerce, validate and freeze.

The default experiment lives in ``config/config.yaml`` and the schema in
``workflow/schemas/config.schema.yaml``; both are the single source of truth for keys, types and
defaults. Snakemake merges ``--configfile``/``--config`` itself; :func:`from_snakemake` turns that
merged dict into a validated ``DictConfig``. Python users call :func:`load_config`. Nothing here
imports torch: the planner runs without it.
"""

from mml_core.config.loading import (
    DEFAULT_CONFIG_PATH,
    REPO_ROOT,
    SCHEMA_PATH,
    ConfigError,
    config_hash,
    from_snakemake,
    load_config,
    select,
)
from mml_core.config.instantiate import instantiate, locate

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "REPO_ROOT",
    "SCHEMA_PATH",
    "ConfigError",
    "config_hash",
    "from_snakemake",
    "instantiate",
    "load_config",
    "locate",
    "select",
]
