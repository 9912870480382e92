"""The files ``finish_exp`` writes for people, their report captions, and writing the generic ones.

The names live here so the scheduler that writes the files and the Snakemake rule that declares
them (and flags them for ``snakemake --report``) agree. Paths are relative to ``results/<proj>/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
FOLD_METRICS_PNG = "plots/fold_metrics.png"
# one <task>.png each; folders rather than files because which tasks get a plot depends on the scheduler
LEARNING_CURVES_DIR = "plots/learning_curves"
CONFUSION_MATRIX_DIR = "plots/confusion_matrix"
CAPTIONS_DIR = Path(__file__).parent / "captions"


def caption(kind: str) -> str:
    """Absolute path of the report caption ``captions/<kind>.rst`` (Snakemake's ``report(caption=...)``)."""
    path = CAPTIONS_DIR / f"{kind}.rst"
    if not path.is_file():
        known = sorted(p.stem for p in CAPTIONS_DIR.glob("*.rst"))
        raise FileNotFoundError(f"No report caption '{kind}' in {CAPTIONS_DIR}; known: {known}.")
    return str(path)


def task_plot(results_dir: Path, folder: str, task: str) -> Path:
    """``results_dir/<folder>/<task>.png``, e.g. ``task_plot(root, LEARNING_CURVES_DIR, "sk_digits")``."""
    return Path(results_dir) / folder / f"{task}.png"


def write_summary_outputs(summary: Mapping[str, Any], results_dir: Path) -> list[Path]:
    """``summary.csv``, ``summary.md`` and ``plots/fold_metrics.png`` from the summary dict.

    Also creates the per-task plot folders, empty for schedulers whose hook draws none: the
    finish rule is shared by every scheduler and Snakemake requires each declared output.
    """
    from mml_core.results.plots import fold_metric_bars
    from mml_core.results.tables import write_csv, write_markdown

    results_dir = Path(results_dir)
    for folder in (LEARNING_CURVES_DIR, CONFUSION_MATRIX_DIR):
        (results_dir / folder).mkdir(parents=True, exist_ok=True)
    tasks = summary.get("tasks", {})
    fold_metric_bars(tasks, results_dir / FOLD_METRICS_PNG)
    return [
        write_csv(summary, results_dir / SUMMARY_CSV),
        write_markdown(summary, results_dir / SUMMARY_MD),
        results_dir / FOLD_METRICS_PNG,
    ]
