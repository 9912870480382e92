"""Shared fixtures: demo data written once per session, and a helper that runs real snakemake."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MML data root with the demo tasks, shared by the session (tests never modify it)."""
    from mml_core.tasks.demo import write_demo_tasks

    root = tmp_path_factory.mktemp("data")
    write_demo_tasks(root)
    return root


@pytest.fixture(scope="session")
def finished_quick(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory where config/quick.yaml ran to completion (demo data written by the run).

    Tests copy it (:func:`copy_workdir`) instead of running the pipeline again.
    """
    workdir = tmp_path_factory.mktemp("finished_quick")
    run_snakemake(workdir, "--cores", "2")
    return workdir


def copy_workdir(source: Path, target: Path) -> Path:
    """A copy of a working directory with results, data and Snakemake's records (mtimes kept)."""
    shutil.copytree(source, target, symlinks=True)
    return target


def run_snakemake(
    workdir: Path,
    *args: str,
    config: Sequence[str] = (),
    configfiles: Sequence[Path] = (REPO / "config" / "quick.yaml",),
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile in ``workdir`` with the default profile, as a user would."""
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), *args]
    for path in configfiles:
        cmd += ["--configfile", str(path)]
    if config:
        cmd += ["--config", *config]
    proc = subprocess.run(
        cmd, cwd=workdir, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


class Tables(HTMLParser):
    """The tables of an HTML document as rows of cell texts, and the text of its <pre> blocks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.pre: list[str] = []
        self._cell: list[str] | None = None
        self._in_pre = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "pre":
            self._in_pre = True
            self.pre.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "pre":
            self._in_pre = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._in_pre:
            self.pre[-1] += data


def no_torch_env(folder: Path) -> dict[str, str]:
    """An environment in which importing torch, Lightning or torchmetrics raises (planning must not)."""
    for name in ("torch", "pytorch_lightning", "lightning", "torchmetrics"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} must not be imported while planning')\n")
    return {"PYTHONPATH": str(folder)}
