"""The files ``finish_exp`` writes, how ``snakemake --report`` shows them, and writing the generic ones.

This module is the one list of finish_exp's outputs: the scheduler writes them, the finish rule
declares them (wrapping the :data:`REPORTED` ones in ``report()``), and ``rule all`` asks for
them. Paths are relative to ``results/<proj>/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mml_core.results.report.pages import RunFacts

SUMMARY_JSON = "summary.json"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
FOLD_METRICS_PNG = "plots/fold_metrics.png"
# one <task>.png each; folders rather than files because which tasks get a plot depends on the scheduler
LEARNING_CURVES_DIR = "plots/learning_curves"
CONFUSION_MATRIX_DIR = "plots/confusion_matrix"
# the test-prediction plots of the other task types (mml_core.results.type_plots)
ROC_CURVES_DIR = "plots/roc_curves"
REGRESSION_SCATTER_DIR = "plots/regression_scatter"
SEGMENTATION_OVERLAYS_DIR = "plots/segmentation_overlays"
CAPTIONS_DIR = Path(__file__).parent / "captions"
# the report's pages and the curves of classification predictions
SUMMARY_HTML = "report/summary.html"
RUN_HTML = "report/run.html"
# the report's first page (Snakemake's `report:` directive), not a report item itself
DESCRIPTION_RST = "report/workflow.rst"
ROC_PR_DIR = "plots/roc_pr"
CALIBRATION_DIR = "plots/calibration"
PER_CLASS_DIR = "tables/per_class"


@dataclasses.dataclass(frozen=True)
class Reported:
    """An output of finish_exp shown in ``snakemake --report`` (Snakemake's ``report()`` arguments)."""

    path: str
    caption: str
    category: str
    labels: Mapping[str, str]
    subcategory: str | None = None
    # for folders: the file pattern inside (report() then lists every matching file)
    patterns: tuple[str, ...] = ()

    @property
    def is_dir(self) -> bool:
        return bool(self.patterns)


REPORTED: dict[str, Reported] = {
    "summary_md": Reported(SUMMARY_MD, "summary_md", "Summary", {"table": "mean ± std (paste)"}),
    "summary_csv": Reported(SUMMARY_CSV, "summary_csv", "Summary", {"table": "every fold (CSV)"}),
    "fold_metrics": Reported(
        FOLD_METRICS_PNG, "fold_metrics", "Plots", {"plot": "metrics per fold"}, subcategory="Per-fold metrics"
    ),
    "learning_curves": Reported(
        LEARNING_CURVES_DIR, "learning_curves", "Plots", {"task": "{task}"}, "Learning curves", ("{task}.png",)
    ),
    "confusion_matrix": Reported(
        CONFUSION_MATRIX_DIR, "confusion_matrix", "Plots", {"task": "{task}"}, "Confusion matrices", ("{task}.png",)
    ),
    # the summary table and the run as pages; classification curves, calibration, per-class metrics
    "summary_html": Reported(SUMMARY_HTML, "summary_html", "Summary", {"table": "mean ± std (table)"}),
    "run": Reported(RUN_HTML, "run", "Run", {"page": "config, overrides, code, steps"}),
    "roc_pr": Reported(ROC_PR_DIR, "roc_pr", "Plots", {"task": "{task}"}, "ROC and PR curves", ("{task}.png",)),
    "calibration": Reported(
        CALIBRATION_DIR, "calibration", "Plots", {"task": "{task}"}, "Reliability diagrams", ("{task}.png",)
    ),
    "per_class": Reported(
        PER_CLASS_DIR, "per_class", "Tables", {"task": "{task}"}, "Per-class metrics", ("{task}.html",)
    ),
    "roc_curves": Reported(
        ROC_CURVES_DIR, "roc_curves", "Plots", {"task": "{task}"}, "ROC curves per label", ("{task}.png",)
    ),
    "regression_scatter": Reported(
        REGRESSION_SCATTER_DIR, "regression_scatter", "Plots", {"task": "{task}"}, "Regression: truth vs prediction",
        ("{task}.png",),
    ),
    "segmentation_overlays": Reported(
        SEGMENTATION_OVERLAYS_DIR, "segmentation_overlays", "Plots", {"task": "{task}"}, "Segmentation overlays",
        ("{task}.png",),
    ),
}
# every output of finish_exp besides its metrics.json
FINISH_OUTPUTS: dict[str, str] = {
    "summary": SUMMARY_JSON, "description": DESCRIPTION_RST, **{key: r.path for key, r in REPORTED.items()}
}  # fmt: skip


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


def write_summary_outputs(summary: Mapping[str, Any], results_dir: Path, facts: RunFacts) -> list[Path]:
    """``summary.csv``, ``summary.md``, ``plots/fold_metrics.png`` and the report's pages (the summary
    table, the run, the workflow description) from the summary dict and the facts of the run.

    Also creates the per-task plot folders, empty for schedulers whose hook draws none: the
    finish rule is shared by every scheduler and Snakemake requires each declared output.
    """
    from mml_core.io import atomic_write_text
    from mml_core.results.plots import fold_metric_dots
    from mml_core.results.report.pages import description_rst, run_page, summary_page
    from mml_core.results.tables import write_csv, write_markdown

    results_dir = Path(results_dir)
    for reported in REPORTED.values():
        if reported.is_dir:
            (results_dir / reported.path).mkdir(parents=True, exist_ok=True)
    fold_metric_dots(summary.get("tasks", {}), results_dir / FOLD_METRICS_PNG)
    pages = {SUMMARY_HTML: summary_page(summary), RUN_HTML: run_page(facts), DESCRIPTION_RST: description_rst(summary, facts)}
    return [
        write_csv(summary, results_dir / SUMMARY_CSV),
        write_markdown(summary, results_dir / SUMMARY_MD),
        results_dir / FOLD_METRICS_PNG,
        *(atomic_write_text(results_dir / path, text) for path, text in pages.items()),
    ]
