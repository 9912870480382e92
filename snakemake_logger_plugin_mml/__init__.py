"""Snakemake logger plugin ``mml``: mml_core's console (``snakemake --logger mml``; the default
profile selects it). Snakemake finds logger plugins as top-level packages named
``snakemake_logger_plugin_<name>``; the console itself lives in :mod:`mml_core.jobs.console`."""

from mml_core.jobs.console import LogHandler, LogHandlerSettings

__all__ = ["LogHandler", "LogHandlerSettings"]
