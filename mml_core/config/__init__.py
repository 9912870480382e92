"""Experiment configuration: load, coerce and validate, once, while planning.

The default experiment lives in ``config/config.yaml`` and the schema in
``workflow/schemas/config.schema.yaml``; both are the single source of truth for keys, types and
defaults. Snakemake merges ``--configfile``/``--config`` itself; :func:`from_snakemake` turns that
merged dict into a validated ``DictConfig``, and :mod:`~mml_core.config.checks` adds the rules
across keys. The scheduler makes its own copy read-only once its schedule is built, and jobs
receive that validated config as a file (see :mod:`mml_core.schedulers.plan`). Python users call
:func:`load_config`. Nothing here imports torch: the planner runs without it.
"""

from mml_core.config.instantiate import instantiate, locate
from mml_core.config.loading import (
    DEFAULT_CONFIG_PATH,
    REPO_ROOT,
    SCHEMA_PATH,
    ConfigError,
    MisconfigurationError,
    config_hash,
    from_snakemake,
    load_config,
    select,
)

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "REPO_ROOT",
    "SCHEMA_PATH",
    "ConfigError",
    "MisconfigurationError",
    "config_hash",
    "from_snakemake",
    "instantiate",
    "load_config",
    "locate",
    "select",
]
