"""Snakemake job entry point: write the demo tasks to data_dir (mml_core.tasks.demo)."""

from mml_core.schedulers.runner import job_log
from mml_core.tasks.demo import write_demo_tasks

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    write_demo_tasks(snakemake.params.data_dir)  # noqa: F821
