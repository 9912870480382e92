"""The sweep summary as tables: ``sweep.csv`` (every trial, full precision), ``sweep.md`` (the
settings, the best trial and a row per trial, to paste) and the report's first page of a sweep,
from the summary dict of :func:`mml_core.sweeps.summary.sweep_summary`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_text
from mml_core.results.report import html
from mml_core.results.tables import _row


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


def _headline(summary: Mapping[str, Any], strong: str = "**") -> list[str]:
    """The settings line and the best trial's line (``strong``: how the names are emphasised)."""
    best, study = summary["best"], summary["study"]
    return [
        f"{strong}{summary['proj']}{strong} sweep ({summary['sampler']}, {summary['direction']} return_value"
        + (f", study {study['name']} in {study['storage']}" if study else "")
        + f"): {summary['trials_complete']} of {summary['trials_total']} trials complete",
        (f"best: {strong}{best['trial']}{strong} return_value {_cell(best['return_value'])}, " + ", ".join(
            f"{k}={_cell(v)}" for k, v in best["params"].items())) if best else "best: none (no completed trial)",
    ]  # fmt: skip


def _trial_cells(summary: Mapping[str, Any], row: Mapping[str, Any]) -> list[str]:
    keys = list(summary["search_space"])
    return [*(_cell(row["params"].get(k)) for k in keys), _cell(row["return_value"]), row["status"],
            f"{row['wall_time_s']:.1f}"]  # fmt: skip


def description_rst(summary: Mapping[str, Any]) -> str:
    """The report's first page of a sweep (Snakemake's ``report:``): the settings, the best trial and
    every trial as an HTML table; each trial's own tables and plots follow, labelled by trial."""
    header = ["trial", *summary["search_space"], "return_value", "status", "wall time (s)"]
    rows = [[row["trial"], *_trial_cells(summary, row)] for row in summary["trials"]]
    body = "".join(html.paragraph(line) for line in _headline(summary, strong=""))
    return html.raw_rst(f"mml_core sweep {summary['proj']}", body + html.table(header, rows, numeric_from=1))


def markdown(summary: Mapping[str, Any]) -> str:
    """``sweep.md``: the settings, the best trial and one table row per trial."""
    keys = list(summary["search_space"])
    best = summary["best"]
    settings, best_line = _headline(summary)
    lines = [
        settings,
        "",
        best_line,
        "",
        _row(["trial", *keys, "return_value", "status", "wall time (s)"]),
        _row(["---", *["---:"] * len(keys), "---:", "---", "---:"]).replace(" ", ""),
    ]  # fmt: skip
    for row in summary["trials"]:
        name = f"**{row['trial']}**" if best and row["trial"] == best["trial"] else row["trial"]
        lines.append(_row([name, *(cell.replace("|", "&#124;") for cell in _trial_cells(summary, row))]))
    return "\n".join(lines) + "\n"


def write_markdown(summary: Mapping[str, Any], path: Path) -> Path:
    """Write :func:`markdown` to ``path``."""
    return atomic_write_text(path, markdown(summary))
