"""Summary tables from the summary dict: ``summary.csv`` (long, every number) and ``summary.md``
(one compact table, ``mean ± std`` per task and metric, to paste into a paper)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.io import atomic_write_text

# the usual reading order of a classification table; other metrics follow alphabetically
METRIC_ORDER = ("acc", "balanced_acc", "f1", "auroc", "loss")


def metric_columns(tasks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Metrics of any task, in :data:`METRIC_ORDER` first, then alphabetically."""
    found = {m for metrics in tasks.values() for m in metrics}
    return [m for m in METRIC_ORDER if m in found] + sorted(found.difference(METRIC_ORDER))


def format_mean_std(mean: float, std: float, significant: int = 4) -> str:
    """``mean ± std`` with ``significant`` digits of the mean and the std at the same decimals,
    as papers print them: 0.98278, 0.0085 -> ``0.9828 ± 0.0085``."""
    if not math.isfinite(mean):
        return "n/a"
    magnitude = math.floor(math.log10(abs(mean))) if mean else 0
    decimals = min(max(significant - 1 - magnitude, 0), 8)
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def summary_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per task and metric: ``task, metric, mean, std, fold_0 .. fold_k`` (folds by position)."""
    tasks = summary.get("tasks", {})
    n_folds = max((len(agg["folds"]) for metrics in tasks.values() for agg in metrics.values()), default=0)
    rows = []
    for task, metrics in tasks.items():
        for metric in metric_columns({task: metrics}):
            agg = metrics[metric]
            folds = agg["folds"]
            rows.append(
                {"task": task, "metric": metric, "mean": agg["mean"], "std": agg["std"]}
                | {f"fold_{i}": folds[i] if i < len(folds) else "" for i in range(n_folds)}
            )
    return rows


def write_csv(summary: Mapping[str, Any], path: Path) -> Path:
    """Write :func:`summary_rows` as CSV (full float precision, so the numbers round-trip)."""
    rows = summary_rows(summary)
    header = list(rows[0]) if rows else ["task", "metric", "mean", "std"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def summary_grid(summary: Mapping[str, Any], significant: int = 4) -> tuple[list[str], list[list[str]]]:
    """The summary as a table of cells: header ``task, folds, <metrics>`` and one row per task with
    ``mean ± std`` cells (``–`` where a task lacks the metric); the one layout every format renders."""
    tasks = summary.get("tasks", {})
    columns = metric_columns(tasks)
    rows = []
    for task, metrics in tasks.items():
        n_folds = max((len(agg["folds"]) for agg in metrics.values()), default=0)
        cells = [
            format_mean_std(metrics[m]["mean"], metrics[m]["std"], significant) if m in metrics else "–"
            for m in columns
        ]
        rows.append([task, str(n_folds), *cells])
    return ["task", "folds", *columns], rows


def return_value_line(summary: Mapping[str, Any], significant: int = 4) -> str:
    """``return_value: v (monitored <metric>: mean ± std over k folds)``."""
    value = summary.get("return_value")
    line = f"return_value: {f'{value:.{significant}g}' if isinstance(value, float) else value}"
    monitored = summary.get("monitored")
    if monitored:
        spread = format_mean_std(monitored["mean"], monitored["std"], significant)
        folds = len(monitored["folds"])
        line += f" (monitored {monitored['metric']}: {spread} over {folds} fold{'' if folds == 1 else 's'})"
    return line


def markdown_table(summary: Mapping[str, Any], significant: int = 4) -> str:
    """The summary as one Markdown table (rows: tasks, columns: metrics) plus the return value."""
    header, rows = summary_grid(summary, significant)
    lines = [
        f"**{summary.get('proj', '')}** ({summary.get('scheduler', '')}): "
        "mean ± std over folds (population std)",
        "",
        _row(header),
        _row(["---", *["---:"] * (len(header) - 1)]).replace(" ", ""),
    ]
    lines += [_row([row[0].replace("|", "&#124;"), *row[1:]]) for row in rows]
    if not rows:
        lines.append(_row(["(no task metrics recorded)", "0"]))
    lines += ["", return_value_line(summary, significant)]
    return "\n".join(lines) + "\n"


def metric_rows(summary: Mapping[str, Any], significant: int = 4) -> tuple[list[str], list[list[str]]]:
    """:func:`summary_grid` turned: one row per metric, one column per task (``task (k folds)``), so
    the table stays narrow however many metrics there are (the console, the report's first page)."""
    header, rows = summary_grid(summary, significant)
    tasks = [f"{row[0]} ({row[1]} fold{'' if row[1] == '1' else 's'})" for row in rows]
    return ["metric", *tasks], [[metric, *(row[2 + i] for row in rows)] for i, metric in enumerate(header[2:])]


def text_table(summary: Mapping[str, Any], significant: int = 4) -> str:
    """The summary for a terminal: :func:`metric_rows` aligned in columns, then the return value."""
    header, rows = metric_rows(summary, significant)
    table = [["", *header[1:]], *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table]
    return "\n".join([*lines, return_value_line(summary, significant)])


def write_markdown(summary: Mapping[str, Any], path: Path) -> Path:
    """Write :func:`markdown_table` to ``path``."""
    return atomic_write_text(path, markdown_table(summary))
