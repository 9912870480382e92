"""Running the commands a benchmark times: processes, snakemake and the import blocker.

``run`` runs a command to completion and returns its wall time, exit status and output;
``snakemake_cmd`` builds the user's ``snakemake -s <repo>/Snakefile ...`` command (the snakemake
next to this Python, so the benchmark measures the active environment); ``FLOOR_CMD`` is the bare
``import torch, pytorch_lightning`` the per-job overhead is compared with; ``import_blocker`` gives
an environment in which importing torch or Lightning fails, to prove that planning imports neither.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

logger = logging.getLogger("benchmarks")

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
FLOOR_CMD = (sys.executable, "-c", "import torch, pytorch_lightning")  # a tuple: a constant


@dataclasses.dataclass
class Run:
    """A finished command: its wall time, exit status and combined stdout and stderr."""

    seconds: float
    returncode: int
    output: str


def run(
    cmd: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 1800,
) -> Run:
    """Run ``cmd`` to completion; its wall time, exit status and (combined) output."""
    logger.debug("$ (cd %s && %s)", cwd, shlex.join(map(str, cmd)))
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.run(
            list(map(str, cmd)),
            cwd=cwd,
            env=env_with(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        seconds = time.perf_counter() - start
        out.seek(0)
        text = out.read()
    if check and proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {shlex.join(map(str, cmd))}\n{text[-4000:]}")
    return Run(seconds, proc.returncode, text)


def env_with(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with ``extra`` on top (what a child command runs with)."""
    env = dict(os.environ)
    env.update(extra or {})
    return env


def snakemake_cmd(repo: Path, *args: str) -> list[str]:
    """``snakemake -s <repo>/Snakefile ...`` (the workflow's default profile applies, as for a user)."""
    return [str(SNAKEMAKE), "-s", str(repo / "Snakefile"), *args]


def import_blocker(folder: Path) -> dict[str, str]:
    """An environment in which importing torch or Lightning raises (as tests/test_e2e.py does)."""
    for name in ("torch", "pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text(
            f"raise ImportError('benchmark: {name} must not be imported while planning')\n"
        )
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
