"""What the console prints when a step finished: one line from the results the step recorded.

The job runner asks the scheduler (``result_headline``) and stores the text in the step's progress
record; the console in the ``snakemake`` process prints it beside the step's name. The summary's
headline is followed by the summary table, so a run ends with its numbers on the screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.results.keys import metric_key
from mml_core.results.plots import METRIC_LABELS
from mml_core.results.tables import format_mean_std, text_table

# test metrics shown when a test step finished, those of its task type in this order (the rest is in
# the summary): classification, multi-label classification, regression, segmentation
HEADLINE_METRICS = ("acc", "balanced_acc", "auroc", "f1", "mae", "r2", "dice", "iou")
# the validation metric of the training line, the first the task type has
VAL_METRICS = ("acc", "auroc", "mae", "dice")


def training_headline(results: Mapping[str, Any]) -> str:
    """``8 epochs · val loss 0.0812 · val accuracy 0.9750`` (the last epoch's validation)."""
    task = results["tasks"][0]
    last = results["history"][-1] if results.get("history") else {}
    parts = [f"{results['epochs']} epoch{'s' if results['epochs'] != 1 else ''}"]
    if results.get("monitored") is not None:
        parts.append(f"val loss {results['monitored']:.4f}")
    for metric in VAL_METRICS:
        value = last.get(metric_key("val", task, metric))
        if value is not None:
            parts.append(f"val {METRIC_LABELS.get(metric, metric)} {value:.4f}")
            break
    return " · ".join(parts)


def prediction_headline(results: Mapping[str, Any]) -> str:
    """``360 test · 287 val predictions`` (splits without samples left out)."""
    counts = [f"{n} {split}" for split, n in results.get("counts", {}).items() if n]
    return f"{' · '.join(counts) or 'no'} predictions of {results.get('evaluated', 'the task')}"


def evaluation_headline(results: Mapping[str, Any]) -> str:
    """``accuracy 0.9828 ± 0.0085 · AUROC 0.9990 ± 0.0004 (5 models)`` over the tested models."""
    metrics = results.get("metrics", {})
    shown = [
        f"{METRIC_LABELS.get(name, name)} {format_mean_std(metrics[name]['mean'], metrics[name]['std'])}"
        for name in HEADLINE_METRICS if name in metrics
    ][:3]  # fmt: skip
    models = len(results.get("per_fold", {}))
    return f"{' · '.join(shown)} ({models} model{'s' if models != 1 else ''})"


def summary_headline(summary: Mapping[str, Any], written_to: Path) -> str:
    """Where the summary was written, then its table (:func:`~mml_core.results.tables.text_table`)."""
    return f"summary in {written_to}\n{text_table(summary)}"
