"""The results table of a benchmark run: figures, the machine they were measured on, JSON.

Benchmarks are not tests: they measure, print medians and ratios, and exit 0 even when a target
is missed. A script collects its results as ``Figure`` rows and hands them to ``report``, which
prints the table (with the machine, the run's duration and, from the run's ``LoadLog``, how many
cores other processes used while it measured) and writes the same as JSON for ``run_all.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import platform
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_timing import LoadLog, median


@dataclasses.dataclass
class Figure:
    """One row of the results table."""

    name: str
    target: str
    measured: str
    met: bool | None  # None: no target, reported for context
    value: float | None = None


def fmt_s(seconds: float) -> str:
    """Seconds as the table shows them (``1.23 s``)."""
    return f"{seconds:.2f} s"


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
    title: str,
    figures: list[Figure],
    details: Mapping[str, Any],
    json_path: Path | None,
    started: float,
    load: LoadLog,
) -> None:
    """Print the figures as a table (and write them as JSON), with the load measured meanwhile."""
    info = machine()
    rows = [("figure", "target", "measured", "met?")]
    rows += [(f.name, f.target, f.measured, {True: "yes", False: "NO", None: "-"}[f.met]) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    others = (
        f"; other processes used {median(load.cores):.1f} cores (median; max {max(load.cores):.1f}) "
        "while measuring"
        if load.cores
        else ""
    )
    info["others_cores"] = list(load.cores)
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
