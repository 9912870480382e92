"""The sweep summary: one row per trial (params, return_value, status, wall time), the best trial,
``sweep.json``, and the tables and plots drawn from it (:mod:`mml_core.results.sweep_tables`,
:mod:`mml_core.results.sweep_plots`).

Everything is read from files: each trial's ``summary.json`` (its ``return_value``) and step
records (wall times), and for an Optuna study the batch markers (the state each trial was told).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_json, atomic_write_text
from mml_core.schedulers.steps import METRICS
from mml_core.sweeps import outputs

COMPLETE = "COMPLETE"


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def wall_time(root: Path) -> float:
    """Seconds the trial's steps ran, summed over its steps' records (resumed steps: the last run)."""
    total = 0.0
    for record in sorted(Path(root).glob(f"steps/*/{METRICS}")):
        total += json.loads(record.read_text())["provenance"]["wall_time_s"]
    return round(total, 3)


def trial_rows(manifest: Mapping[str, Any], states: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per trial of the manifest: ``states`` gives the state told to the study (grid: by value)."""
    rows = []
    for trial in manifest["trials"]:
        summary_path = Path(trial["summary"])
        value = json.loads(summary_path.read_text()).get("return_value")
        status = states.get(trial["name"], COMPLETE if _finite(value) else "FAIL")
        rows.append(
            {
                "trial": trial["name"],
                "number": trial["number"],
                "status": status,
                "return_value": value,
                "wall_time_s": wall_time(summary_path.parent),
                "params": trial["params"],
                "results": str(summary_path.parent),
            }
        )
    return rows


def best_row(rows: list[dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The completed trial with the lowest (minimize) or highest (maximize) return_value; first on ties."""
    done = [row for row in rows if row["status"] == COMPLETE and _finite(row["return_value"])]
    if not done:
        return None
    pick = min if direction == "minimize" else max
    return pick(done, key=lambda row: row["return_value"])


def sweep_summary(manifest: Mapping[str, Any], states: Mapping[str, str]) -> dict[str, Any]:
    """The content of ``sweep.json``."""
    rows = trial_rows(manifest, states)
    best = best_row(rows, manifest["direction"])
    return {
        "proj": manifest["proj"],
        "sampler": manifest["sampler"],
        "direction": manifest["direction"],
        "study": manifest["study"],
        "search_space": manifest["search_space"],
        "trials_total": len(rows),
        "trials_complete": sum(row["status"] == COMPLETE for row in rows),
        # the sweep's return_value (what scheduler.run() returns): its best trial's
        "return_value": best["return_value"] if best else None,
        "best": (
            {key: best[key] for key in ("trial", "number", "params", "return_value", "results")}
            if best
            else None
        ),
        "trials": rows,
    }


def write_sweep_outputs(summary: Mapping[str, Any], root: Path) -> None:
    """Every file of the sweep summary under ``root`` (``results/<proj>``): tables and plots, ``sweep.json`` last."""
    from mml_core.results.sweep_plots import importance_bars, optimization_history, parallel_coordinates
    from mml_core.results.sweep_tables import description_rst, write_csv, write_markdown

    root = Path(root)
    write_csv(summary, root / outputs.SWEEP_CSV)
    atomic_write_text(root / outputs.DESCRIPTION_RST, description_rst(summary))
    write_markdown(summary, root / outputs.SWEEP_MD)
    optimization_history(summary, root / outputs.HISTORY_PNG)
    parallel_coordinates(summary, root / outputs.PARALLEL_PNG)
    importance_bars(summary, root / outputs.IMPORTANCE_PNG)
    atomic_write_json(root / outputs.SWEEP_JSON, summary)
