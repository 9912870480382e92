"""Experiments side by side: their summaries and the config keys in which they differ.

``python -m mml_core.results.compare results/default results/quick`` prints a Markdown table with
one column per experiment: first the config keys whose values differ between them (``proj``
aside, it names the columns), then mean ± std of every task and metric, then the return value.
``--out NAME`` writes ``NAME.csv`` (every number), ``NAME.md`` and ``NAME.html`` (a page of its
own) instead. A path is an experiment folder (one holding ``summary.json``) or a folder of
experiments: ``results`` compares every project, ``results/<proj>/trials`` every trial of a sweep.
Each ``summary.json`` holds the config it was computed with, so copied summaries compare too.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mml_core.config.record import differing_keys, flatten, format_value
from mml_core.io import atomic_write_text
from mml_core.results.outputs import SUMMARY_JSON
from mml_core.results.report import html
from mml_core.results.tables import format_mean_std, metric_columns

logger = logging.getLogger(__name__)

# experiments below a folder: projects (results/<proj>) and trials (results/<proj>/trials/<trial>)
SEARCH_DEPTH = 3
IGNORED_KEYS = ("proj",)


class NoExperiment(ValueError):
    """A path holds no finished experiment; the message says what to run."""


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Experiments (column labels), the differing config keys and the metrics, one value per experiment."""

    labels: list[str]
    config: list[tuple[str, list[str]]]
    # (task, metric) -> per experiment (mean, std) or None where it lacks the metric
    metrics: list[tuple[str, str, list[tuple[float, float] | None]]]
    return_values: list[Any]


def find_experiments(paths: Sequence[Path]) -> list[Path]:
    """The experiment folders named by ``paths`` (each itself, or the experiments below it)."""
    found = []
    for path in map(Path, paths):
        if (path / SUMMARY_JSON).is_file():
            found.append(path)
            continue
        below = sorted(p.parent for depth in range(1, SEARCH_DEPTH + 1) for p in path.glob("*/" * depth + SUMMARY_JSON))
        if not below:
            raise NoExperiment(
                f"No finished experiment in {path}: neither it nor a folder below holds {SUMMARY_JSON} (finish_exp "
                "writes it at the end of a run). Name results/<proj> folders of finished runs, or run them to the end."
            )
        found += below
    return list(dict.fromkeys(found))


def _labels(experiments: Sequence[Path]) -> list[str]:
    resolved = [p.resolve() for p in experiments]
    if len(resolved) == 1:
        return [resolved[0].name]
    common = Path(os.path.commonpath(resolved))
    return [str(p.relative_to(common)) or p.name for p in resolved]


def _config(experiment: Path, summary: dict[str, Any]) -> dict[str, Any]:
    if "config" in summary:
        return summary["config"]
    import yaml

    fallback = experiment / "config.yaml"
    if fallback.is_file():
        return yaml.safe_load(fallback.read_text())
    logger.warning("%s records no config (an older run); its config keys show as absent.", experiment)
    return {}


def compare(experiments: Sequence[Path]) -> Comparison:
    """Tabulate the summaries of ``experiments`` (see the module docstring)."""
    summaries = [json.loads((Path(e) / SUMMARY_JSON).read_text()) for e in experiments]
    configs = [_config(Path(e), s) for e, s in zip(experiments, summaries)]
    flats = [flatten(c) for c in configs]
    keys = [k for k in differing_keys(configs) if k not in IGNORED_KEYS]
    config_rows = [(k, [format_value(f[k]) if k in f else "–" for f in flats]) for k in keys]
    tasks = list(dict.fromkeys(task for s in summaries for task in s.get("tasks", {})))
    metric_rows = []
    for task in tasks:
        per_experiment = [s.get("tasks", {}).get(task, {}) for s in summaries]
        for metric in metric_columns({task: {m: None for t in per_experiment for m in t}}):
            cells = [(t[metric]["mean"], t[metric]["std"]) if metric in t else None for t in per_experiment]
            metric_rows.append((task, metric, cells))
    return Comparison(_labels(experiments), config_rows, metric_rows, [s.get("return_value") for s in summaries])


def grid(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The comparison as text cells: a header and rows (config keys, then task/metric, then return value)."""
    rows = [[f"config: {key}", *values] for key, values in comparison.config]
    rows += [[f"{task} / {metric}", *(format_mean_std(*cell) if cell else "–" for cell in cells)]
             for task, metric, cells in comparison.metrics]  # fmt: skip
    rows.append(["return_value", *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in comparison.return_values)])
    return ["", *comparison.labels], rows


def to_markdown(comparison: Comparison) -> str:
    """A Markdown table, one column per experiment."""
    header, rows = grid(comparison)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * len(comparison.labels)]
    lines += ["| " + " | ".join(cell.replace("|", "&#124;") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def to_html(comparison: Comparison) -> str:
    """A page of its own: the differing config keys and the metrics as HTML tables."""
    header, rows = grid(comparison)
    n_config = len(comparison.config)
    note = "Only the config keys whose values differ are shown; metrics are mean ± std over folds."
    return html.page(
        f"Comparison of {len(comparison.labels)} experiments",
        html.section("Config differences", html.table(header, rows[:n_config]) if n_config else
                     html.paragraph("The experiments have the same config (apart from proj).")),
        html.section("Metrics", html.table(header, rows[n_config:])),
        html.paragraph(note, note=True),
    )  # fmt: skip


def to_csv(comparison: Comparison) -> str:
    """Every number: ``section, task, key`` then per experiment its value (config) or mean, and the std."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "task", "key", *(f"{label}{suffix}" for label in comparison.labels for suffix in ("", " std"))])
    for key, values in comparison.config:
        writer.writerow(["config", "", key, *(cell for value in values for cell in (value, ""))])
    for task, metric, cells in comparison.metrics:
        writer.writerow(["metric", task, metric, *(v for cell in cells for v in (cell or ("", "")))])
    writer.writerow(["return_value", "", "", *(v for value in comparison.return_values for v in (value, ""))])
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """``python -m mml_core.results.compare PATH... [--out NAME]``."""
    parser = argparse.ArgumentParser(prog="python -m mml_core.results.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("paths", nargs="+", type=Path, help="experiment folders, or folders of experiments")
    parser.add_argument("--out", type=Path, help="write NAME.csv, NAME.md and NAME.html instead of printing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        comparison = compare(find_experiments(args.paths))
    except NoExperiment as exc:
        logger.error("%s", exc)
        return 1
    if args.out is None:
        sys.stdout.write(to_markdown(comparison))
        return 0
    for suffix, render in ((".csv", to_csv), (".md", to_markdown), (".html", to_html)):
        path = atomic_write_text(args.out.with_name(args.out.name + suffix), render(comparison))
        logger.info("Wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
