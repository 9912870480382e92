"""Snakemake job entry point: the data fingerprint of a task whose task file an earlier job wrote."""

from pathlib import Path

from mml_core.jobs.logs import job_log
from mml_core.tasks import read_task_file
from mml_core.tasks.fingerprint import data_fingerprint, write_fingerprint

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    task_file = Path(snakemake.input[0])  # noqa: F821
    write_fingerprint(Path(snakemake.output[0]), task_file, data_fingerprint(task_file, read_task_file(task_file)))  # noqa: F821
