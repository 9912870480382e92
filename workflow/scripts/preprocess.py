"""Snakemake job entry point: write one task's preprocessed version (mml_core.data.preprocess)."""

from mml_core.data.preprocess import preprocess_task
from mml_core.jobs.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    settings = snakemake.params.preprocessing  # noqa: F821
    preprocess_task(snakemake.input[0], settings["id"], settings["pipeline"])  # noqa: F821
