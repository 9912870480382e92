"""Snakemake job entry point of an Optuna sweep's batch: tell each trial its return_value, then
write the batch marker (the sweep's checkpoint) listing what was told (mml_core.sweeps.study)."""

import json
from pathlib import Path

from mml_core.io import atomic_write_json
from mml_core.jobs.logs import job_log
from mml_core.sweeps.study import tell_trials

with job_log(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    trials = snakemake.params.trials  # noqa: F821
    values = [json.loads(Path(path).read_text()).get("return_value") for path in snakemake.input]  # noqa: F821
    states = tell_trials(
        snakemake.params.storage, snakemake.params.study, [t["number"] for t in trials], values  # noqa: F821
    )
    told = [{**t, "state": state, "return_value": value} for t, state, value in zip(trials, states, values)]
    atomic_write_json(Path(snakemake.output[0]), {"batch": int(snakemake.wildcards.batch), "trials": told})  # noqa: F821
