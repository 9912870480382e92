"""Drive the repository's Snakefile in this process exactly as the ``snakemake`` command does.

``scheduler.run()`` (and any Python caller) gets the same pipeline, files, rerun rules and
profile as ``snakemake --cores N`` in the working directory: the command line is parsed by
Snakemake's own parser, which reads ``workflow/profiles/default`` like the CLI, so the profile's
settings have one home.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mml_core.config import REPO_ROOT
from mml_core.sweeps import summary_path

SNAKEFILE = REPO_ROOT / "Snakefile"
DEFAULT_PROFILE = REPO_ROOT / "workflow" / "profiles" / "default"


class WorkflowFailed(RuntimeError):
    """Snakemake stopped with an error; it printed the failing step and its log."""


def run_snakemake(args: Sequence[str]) -> bool:
    """``snakemake <args>`` in-process with this repository's Snakefile and default profile; True on success."""
    from snakemake.cli import args_to_api, parse_args

    argv = ["--snakefile", str(SNAKEFILE), "--workflow-profile", str(DEFAULT_PROFILE), *args]
    parser, parsed = parse_args(argv)
    return bool(args_to_api(parsed, parser))


def run_workflow(
    config: Mapping[str, Any],
    cores: int = 1,
    workdir: Path | None = None,
    targets: Sequence[str] = (),
    dryrun: bool = False,
) -> dict[str, Any]:
    """Run the pipeline of ``config`` like ``snakemake --cores N`` in ``workdir`` (default: cwd).

    Returns the experiment's ``summary.json``, or a sweep's ``sweep.json`` (empty for a dry run);
    raises :class:`WorkflowFailed` when a step failed.
    """
    workdir = Path(workdir or Path.cwd()).resolve()
    with tempfile.TemporaryDirectory(prefix="mml_core-run-") as tmp:
        configfile = Path(tmp) / "config.yaml"
        configfile.write_text(json.dumps(dict(config)))  # JSON is YAML
        args = ["--directory", str(workdir), "--cores", str(cores), "--configfile", str(configfile)]
        ok = run_snakemake([*args, *(["--dry-run"] if dryrun else []), *targets])
    if not ok:
        raise WorkflowFailed(f"snakemake failed in {workdir}; the message above names the step and its log.")
    summary = workdir / summary_path(config)
    if dryrun or not summary.is_file():
        return {}
    with open(summary) as fh:
        return json.load(fh)
