"""Snakemake job entry point: write the demo tasks to data_dir (mml_core.tasks.demo)."""

from pathlib import Path

from mml_core.jobs.logs import job_log
from mml_core.tasks.demo import write_demo_tasks

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    # the data root, from a task file's path (<data_dir>/RAW/DSET_<dataset>/TASK_<task>.json), so
    # the job does not depend on the planning host's path spelling (Snakemake's lint)
    outputs = [Path(path) for path in snakemake.output]  # noqa: F821
    write_demo_tasks(outputs[0].parents[2], names=[path.stem.removeprefix("TASK_") for path in outputs])
