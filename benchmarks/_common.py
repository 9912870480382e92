"""Shared helpers of the benchmark scripts: timing, alternating repeats, figures, the report.

Benchmarks are not tests: they measure, print medians and ratios, and exit 0 even when a target
is missed. Every script measures the two sides of a ratio in one run, alternating (A, B, A, B ...),
because this machine is shared and its load drifts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks")

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
FLOOR_CMD = [sys.executable, "-c", "import torch, pytorch_lightning"]


# -- command line, logging, report ------------------------------------------------------------------


def parser(description: str, repeats: int, quick_repeats: int = 1) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"alternating repeats of each side (default {repeats}, --quick: {quick_repeats})",
    )
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes: a smoke run")
    p.add_argument(
        "--repo",
        type=Path,
        default=REPO,
        help="repository whose Snakefile is run (default: this one); mml_core is imported from "
        "the active environment (set PYTHONPATH to benchmark another checkout)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the working directories here (default: a temporary folder, removed at the end)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(default_repeats=repeats, quick_repeats=quick_repeats)
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = args.quick_repeats if args.quick else args.default_repeats
    args.repo = args.repo.resolve()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    return args


@contextlib.contextmanager
def workspace(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """The folder the benchmark works in: ``--workdir/<name>`` (kept) or a temporary one (removed)."""
    if args.workdir is not None:
        path = (args.workdir / name).resolve()
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        yield path
        logger.info("Working files kept in %s", path)
    else:
        with tempfile.TemporaryDirectory(prefix=f"mml-bench-{name}-") as tmp:
            yield Path(tmp)


@dataclasses.dataclass
class Figure:
    """One row of the results table."""

    name: str
    target: str
    measured: str
    met: bool | None  # None: no target, reported for context
    value: float | None = None


def machine() -> dict[str, Any]:
    """The machine and versions the figures were measured on."""
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    versions = {}
    for dist in ("torch", "pytorch-lightning", "snakemake"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "mem_gib": mem_gib,
        "python": platform.python_version(),
        **versions,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def report(
    title: str, figures: list[Figure], details: Mapping[str, Any], json_path: Path | None, started: float
) -> None:
    """Print the figures as a table (and write them as JSON)."""
    info = machine()
    rows = [("figure", "target", "measured", "met?")]
    rows += [(f.name, f.target, f.measured, {True: "yes", False: "NO", None: "-"}[f.met]) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    others = (
        f"; other processes used {median(OTHERS):.1f} cores (median; max {max(OTHERS):.1f}) while measuring"
        if OTHERS
        else ""
    )
    info["others_cores"] = OTHERS
    lines = [
        f"== {title} ==",
        (
            f"   {info['date']}, {info['cores']} cores, {info['mem_gib']} GiB, Python {info['python']}, "
            f"torch {info.get('torch')}, took {time.time() - started:.0f} s; load average now {info['loadavg']}"
            f"{others}"
        ),
    ]
    for i, row in enumerate(rows):
        lines.append("   " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("   " + "  ".join("-" * w for w in widths))
    print("\n".join(lines), flush=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(
            json.dumps(
                {
                    "title": title,
                    "machine": info,
                    "seconds": round(time.time() - started, 1),
                    "figures": [dataclasses.asdict(f) for f in figures],
                    "details": details,
                },
                indent=2,
                default=str,
            )
        )


# -- statistics -------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """``median (min-max, n)`` with sensible digits."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3g}"
    return f"{median(values):.3g} ({min(values):.3g}-{max(values):.3g}, n={len(values)})"


# cores that other processes kept busy while each measurement ran (see CpuMeter)
OTHERS: list[float] = []


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with contextlib.suppress(OSError, ValueError):
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return float("nan")


class CpuMeter:
    """How many cores other processes used while a measurement ran: machine busy time minus ours
    (this process and the children it waited for), over the wall time."""

    def __enter__(self) -> CpuMeter:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self._t, self._busy, self._wall = os.times(), _busy_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        t, wall = os.times(), time.perf_counter() - self._wall
        ours = sum(t[:4]) - sum(self._t[:4])
        self.others = max(0.0, _busy_seconds() - self._busy - ours) / wall if wall > 0 else float("nan")
        OTHERS.append(self.others)


def alternate(sides: Mapping[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run every side once per round, in order (A, B, A, B ...); the lists of measured values."""
    values: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(repeats):
        for name, measure in sides.items():
            with CpuMeter() as meter:
                value = measure()
            values[name].append(value)
            logger.info(
                "round %d/%d  %-28s %8.3f   (other processes used %.1f cores meanwhile)",
                round_ + 1,
                repeats,
                name,
                value,
                meter.others,
            )
    return values


def paired_ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Ratios of the values measured in the same round (the load of a round cancels out)."""
    return [a / b for a, b in zip(num, den) if b]


# -- processes --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
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


def experiment_file(path: Path, **keys: Any) -> Path:
    """Write an experiment file (a small YAML on top of config/config.yaml) with these keys."""
    path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in keys.items()))  # JSON is YAML
    return path


def custom_scheduler_file(path: Path, proj: str, data: Path, scheduler: str, subroutine: str) -> Path:
    """An experiment file selecting a custom scheduler (``module:Class``) on the demo task, no pivot."""
    mode = {"scheduler": scheduler, "subroutines": [subroutine]}
    return experiment_file(
        path, proj=proj, data_dir=str(data), task_list=["sk_digits"], pivot={"name": None}, mode=mode
    )


def demo_data(folder: Path) -> Path:
    """Write the demo tasks once (not timed); reuse them through ``data_dir``."""
    from mml_core.tasks.demo import write_demo_tasks

    if not (folder / "RAW").is_dir():
        logger.info("Writing the demo tasks to %s (not timed)", folder)
        write_demo_tasks(folder)
    return folder


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s"
