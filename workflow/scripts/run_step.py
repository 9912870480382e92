"""Snakemake job entry point: run the step named in params (see mml_core.schedulers.runner)."""

from mml_core.schedulers.runner import run_step

run_step(
    config=snakemake.config,  # noqa: F821 - injected by Snakemake
    step=snakemake.params.step["step"],  # noqa: F821
    output=snakemake.output.metrics,  # noqa: F821
    log=snakemake.log[0],  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
