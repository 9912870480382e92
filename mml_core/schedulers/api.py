"""``scheduler.run()``: drive the repository's Snakefile in-process through Snakemake's Python API."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mml_core.config import REPO_ROOT

SNAKEFILE = REPO_ROOT / "Snakefile"


def run_workflow(
    config: Mapping[str, Any],
    cores: int = 1,
    workdir: Path | None = None,
    targets: Sequence[str] = (),
    dryrun: bool = False,
) -> dict[str, Any]:
    """Run the pipeline of ``config`` like ``snakemake --cores N`` in ``workdir`` (default: cwd).

    Uses the same settings as ``workflow/profiles/default`` (rerun incomplete steps, no code
    trigger) and returns the experiment's ``summary.json`` (empty for a dry run).
    """
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        ExecutionSettings,
        OutputSettings,
        ResourceSettings,
        RerunTrigger,
    )

    workdir = Path(workdir or Path.cwd()).resolve()
    with SnakemakeApi(OutputSettings(quiet=None)) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(cores=cores),
            config_settings=ConfigSettings(config=dict(config)),
            snakefile=SNAKEFILE,
            workdir=workdir,
        )
        dag = workflow.dag(
            dag_settings=DAGSettings(
                targets=set(targets),
                rerun_triggers=frozenset({RerunTrigger.MTIME, RerunTrigger.PARAMS, RerunTrigger.INPUT}),
                force_incomplete=True,
            )
        )
        dag.execute_workflow(
            executor="local",
            pseudo_executor="dryrun" if dryrun else None,
            execution_settings=ExecutionSettings(),
        )
    summary = workdir / "results" / str(config["proj"]) / "summary.json"
    if dryrun or not summary.is_file():
        return {}
    with open(summary) as fh:
        return json.load(fh)
