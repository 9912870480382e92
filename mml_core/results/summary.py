"""Aggregate per-fold metrics into the experiment summary (``results/<proj>/summary.json``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping


def aggregate(values: Iterable[float]) -> dict[str, object]:
    """``{"folds": [...], "mean": m, "std": s}``; std is the population std (0 for one fold), as MML logs it."""
    folds = [float(v) for v in values]
    finite = [v for v in folds if math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else float("nan")
    std = statistics.pstdev(finite) if len(finite) > 1 else 0.0
    return {"folds": folds, "mean": mean, "std": std}


def aggregate_folds(per_fold: Mapping[int, Mapping[str, float]]) -> dict[str, dict[str, object]]:
    """``{fold: {metric: v}}`` -> ``{metric: aggregate(values over folds, in fold order)}``."""
    metrics = sorted({m for values in per_fold.values() for m in values})
    folds = sorted(per_fold)
    return {m: aggregate(per_fold[f][m] for f in folds if m in per_fold[f]) for m in metrics}
