"""Snakemake job entry point: the sweep summary, its tables and plots (mml_core.sweeps.summary)."""

import json
from pathlib import Path

from mml_core.jobs.logs import job_log
from mml_core.sweeps.summary import sweep_summary, write_sweep_outputs

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    # an Optuna study's batch markers hold the state told to each trial; a grid has none
    states = {
        told["name"]: told["state"]
        for marker in snakemake.input.batches  # noqa: F821
        for told in json.loads(Path(marker).read_text())["trials"]
    }
    summary = sweep_summary(snakemake.params.manifest, states)  # noqa: F821
    write_sweep_outputs(summary, Path(snakemake.output.json).parent)  # noqa: F821
