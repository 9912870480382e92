"""The sweep summary: one row per trial (params, return_value, status, wall time), the best trial,
``sweep.json``, ``sweep.csv``, ``sweep.md`` and the plots (:mod:`mml_core.results.sweep_plots`).

Everything is read from files: each trial's ``summary.json`` (its ``return_value``) and step
records (wall times), and for an Optuna study the batch markers (the state each trial was told).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_json, atomic_write_text
from mml_core.results.tables import _row
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
        "best": (
            {key: best[key] for key in ("trial", "number", "params", "return_value", "results")} if best else None
        ),
        "trials": rows,
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value)


def write_csv(summary: Mapping[str, Any], path: Path) -> Path:
    """``sweep.csv``: trial, number, status, return_value, wall time, one column per swept key."""
    keys = list(summary["search_space"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", "number", "status", "return_value", "wall_time_s", *keys])
    for row in summary["trials"]:
        params = [row["params"].get(k) for k in keys]
        writer.writerow([row["trial"], row["number"], row["status"], row["return_value"], row["wall_time_s"],
                         *(p if isinstance(p, (str, int, float)) else json.dumps(p) for p in params)])  # fmt: skip
    return atomic_write_text(path, buffer.getvalue())


def markdown(summary: Mapping[str, Any]) -> str:
    """``sweep.md``: the settings, the best trial and one table row per trial."""
    keys = list(summary["search_space"])
    best = summary["best"]
    study = summary["study"]
    lines = [
        f"**{summary['proj']}** sweep ({summary['sampler']}, {summary['direction']} return_value"
        + (f", study {study['name']} in {study['storage']}" if study else "")
        + f"): {summary['trials_complete']} of {summary['trials_total']} trials complete",
        "",
        (f"best: **{best['trial']}** return_value {_cell(best['return_value'])}, " + ", ".join(
            f"{k}={_cell(v)}" for k, v in best["params"].items())) if best else "best: none (no completed trial)",
        "",
        _row(["trial", *keys, "return_value", "status", "wall time (s)"]),
        _row(["---", *["---:"] * len(keys), "---:", "---", "---:"]).replace(" ", ""),
    ]  # fmt: skip
    for row in summary["trials"]:
        name = f"**{row['trial']}**" if best and row["trial"] == best["trial"] else row["trial"]
        cells = [_cell(row["params"].get(k)).replace("|", "&#124;") for k in keys]
        lines.append(_row([name, *cells, _cell(row["return_value"]), row["status"], f"{row['wall_time_s']:.1f}"]))
    return "\n".join(lines) + "\n"


def write_sweep_outputs(summary: Mapping[str, Any], root: Path) -> None:
    """Every file of the sweep summary under ``root`` (``results/<proj>``): tables and plots, ``sweep.json`` last."""
    from mml_core.results.sweep_plots import importance_bars, optimization_history, parallel_coordinates

    root = Path(root)
    write_csv(summary, root / outputs.SWEEP_CSV)
    atomic_write_text(root / outputs.SWEEP_MD, markdown(summary))
    optimization_history(summary, root / outputs.HISTORY_PNG)
    parallel_coordinates(summary, root / outputs.PARALLEL_PNG)
    importance_bars(summary, root / outputs.IMPORTANCE_PNG)
    atomic_write_json(root / outputs.SWEEP_JSON, summary)
