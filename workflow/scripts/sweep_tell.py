"""Snakemake job entry point of an Optuna sweep's batch: tell each trial its return_value, then
write the batch marker (the sweep's checkpoint) listing what was told (mml_core.sweeps.study)."""

import json
from pathlib import Path

from mml_core.io import atomic_write_json
from mml_core.jobs.logs import job_log
from mml_core.sweeps.study import tell_trials

job = snakemake  # noqa: F821 - injected by Snakemake
with job_log(job.log[0]):
    trials = job.params.trials
    values = [json.loads(Path(path).read_text()).get("return_value") for path in job.input]
    states = tell_trials(job.params.storage, job.params.study, [t["number"] for t in trials], values)
    told = [{**t, "state": state, "return_value": value} for t, state, value in zip(trials, states, values)]
    atomic_write_json(Path(job.output[0]), {"batch": int(job.wildcards.batch), "trials": told})
