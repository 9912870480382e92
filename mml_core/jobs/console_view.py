"""What the console shows, as text: a line per started, finished or failed step, a progress line
per running step, and the live table a terminal redraws (see :mod:`mml_core.jobs.console`).

Everything here formats a step's progress record (:mod:`mml_core.progress`) and Snakemake's job
facts into ``rich`` text; nothing reads files or holds state, so the lines can be tested as text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mml_core.results.keys import split_metric_key

OK, FAILED, RETRY, STARTED = "✓", "✗", "↻", "▶"


def duration(seconds: float | None) -> str:
    """``4.2 s`` below a minute, else ``1:02:03`` or ``2:03``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def compact_metrics(metrics: Mapping[str, float]) -> str:
    """``train loss 0.412 · val loss 0.398 · val acc 0.931``: per-task names without the task where the
    step has one task; the weighted ``<phase>/loss`` only where no task's own loss stands for it."""
    parts = {key: split_metric_key(key) for key in metrics}
    tasks = {p[1] for p in parts.values() if p}
    shown = []
    # train before val, the loss before the other metrics of a phase
    for key, value in sorted(metrics.items(), key=lambda kv: (kv[0].split("/")[0] != "train", not kv[0].endswith("loss"))):
        split = parts[key]
        if split is None and len(tasks) == 1:
            continue  # the weighted loss of one task is that task's loss
        name = f"{split[0]} {split[2]}" if split and len(tasks) == 1 else key.replace("/", " ", 1)
        shown.append(f"{name} {value:.3f}")
    return " · ".join(shown)


def position(record: Mapping[str, Any]) -> str:
    """``epoch 3/8 · batch 12/23`` (training) or ``test batch 4/6``; empty before the step reported."""
    parts = []
    if record.get("phase") == "test":
        parts.append("testing")
    elif record.get("epoch"):
        parts.append(f"epoch {record['epoch']}/{record.get('max_epochs') or '?'}")
    if record.get("batch") and record.get("batches"):
        parts.append(f"batch {record['batch']}/{record['batches']}")
    return " · ".join(parts)


def fraction_done(record: Mapping[str, Any]) -> float | None:
    """Share of the step's training done (0..1), where the record tells."""
    epochs, epoch = record.get("max_epochs"), record.get("epoch")
    if not epochs or not epoch or epochs < 0:
        return None
    within = record["batch"] / record["batches"] if record.get("batch") and record.get("batches") else 1.0
    return min(max((epoch - 1 + within) / epochs, 0.0), 1.0)


def started_line(name: str, attempt: int = 1) -> Text:
    """``▶ train_fold--sk_digits_0`` (``↻ ... attempt 2`` for a retry)."""
    if attempt > 1:
        return Text.assemble((f"{RETRY} ", "yellow"), (name, "bold"), f"  attempt {attempt}")
    return Text.assemble((f"{STARTED} ", "cyan"), name)


def progress_line(name: str, record: Mapping[str, Any]) -> Text:
    """``  train_fold--sk_digits_0  epoch 3/8 · val loss 0.398 · ETA 0:14`` for a running step."""
    parts = [position(record), compact_metrics(record.get("metrics") or {})]
    if record.get("eta_s") is not None:
        parts.append(f"ETA {duration(record['eta_s'])}")
    return Text.assemble("  ", (name, "bold"), "  ", " · ".join(p for p in parts if p))


def finished_lines(name: str, result: str | None, wall_time: float) -> list[Text]:
    """``✓ name  12.3 s  <result>``; a multi-line result (the summary table) follows indented."""
    lines = str(result or "").splitlines() or [""]
    first = Text.assemble((f"{OK} ", "green"), (name, "bold"), f"  {duration(wall_time)}", f"  {lines[0]}" if lines[0] else "")
    return [first, *(Text(f"    {line}") for line in lines[1:])]


def failed_lines(name: str, error: str, log: Path | None, reason: str | None = None,
                 other_logs: Sequence[str] = ()) -> list[Text]:  # fmt: skip
    """``✗ name failed: <error>``, the cluster's reason where it gave one, and the log to read."""
    lines = [Text.assemble((f"{FAILED} ", "red"), (name, "bold"), (" failed: ", "red"), error)]
    if reason:
        lines.append(Text(f"  {reason}"))
    for path in ([str(log)] if log else []) + list(other_logs):
        lines.append(Text.assemble("  log: ", (path, "underline")))
    return lines


def live_table(running: Sequence[tuple[str, Mapping[str, Any], float]], done: int, total: int,
               elapsed: float) -> RenderableType:  # fmt: skip
    """The terminal's live region: a row per running step (bar, position, metrics, ETA), then the count."""
    grid = Table.grid(padding=(0, 1))
    for _ in range(4):
        grid.add_column(no_wrap=True)
    for name, record, running_for in running:
        fraction = fraction_done(record)
        bar = ProgressBar(total=1.0, completed=fraction or 0.0, width=20, pulse=fraction is None)
        eta = f"ETA {duration(record['eta_s'])}" if record.get("eta_s") is not None else duration(running_for)
        detail = " · ".join(p for p in (position(record), compact_metrics(record.get("metrics") or {})) if p)
        grid.add_row(Text(name, style="bold"), bar, Text(detail or "starting"), Text(eta, style="cyan"))
    footer = Text(f"{done}/{total} steps done · {duration(elapsed)}", style="dim")
    return Group(grid, footer)
