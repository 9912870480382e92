"""PNG plots of a sweep from its summary (``sweep.json``): optimization history, parallel
coordinates, parameter importances. Drawn like :mod:`mml_core.results.plots` (own ``Figure``,
Agg canvas, atomic writes, fixed sizes); a plot with too little to show says why instead."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mml_core.results.plots import _figure, _save

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COMPLETE = "COMPLETE"


def _scored(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        row for row in summary["trials"]
        if isinstance(row["return_value"], (int, float)) and math.isfinite(row["return_value"])
    ]  # fmt: skip


def _note(ax: Axes, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)


def optimization_history(summary: Mapping[str, Any], out: Path) -> Figure:
    """return_value of every trial in the order they were asked, and the best value so far."""
    figure = _figure(7, 4)
    ax = figure.subplots()
    rows = _scored(summary)
    if not rows:
        _note(ax, "no trial has a return_value yet")
    else:
        pick = min if summary["direction"] == "minimize" else max
        best, so_far = None, []
        for position, row in enumerate(rows):
            if row["status"] == COMPLETE:
                best = row["return_value"] if best is None else pick(best, row["return_value"])
            so_far.append((position, best))
        for status, marker in ((COMPLETE, "o"), ("PRUNED", "x")):
            points = [(i, r["return_value"]) for i, r in enumerate(rows) if r["status"] == status]
            if points:
                ax.scatter(*zip(*points), marker=marker, label=status.lower(), zorder=3)
        steps = [(i, b) for i, b in so_far if b is not None]
        if steps:
            ax.step(*zip(*steps), where="post", color="C3", label="best so far")
        ax.set_xticks(range(len(rows)), [r["trial"] for r in rows], rotation=60, ha="right", fontsize=7)
        ax.set(ylabel="return_value", title=f"Optimization history ({summary['direction']})")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(figure, out)
    return figure


def _axis_values(rows: list[Mapping[str, Any]], key: str) -> tuple[list[float], list[float], list[str]]:
    """A parameter's values on [0, 1] (numbers by value, log scale when they span > 2 decades;
    other values by rank) and the ticks to label the axis with."""
    raw = [row["params"].get(key) for row in rows]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        low, high = min(raw), max(raw)
        log = low > 0 and high / low > 100
        scale = (lambda v: math.log10(v)) if log else (lambda v: float(v))
        span = (scale(high) - scale(low)) or 1.0
        where = [(scale(v) - scale(low)) / span for v in raw]
        return where, [0.0, 1.0], [f"{low:.3g}", f"{high:.3g}"]
    labels = sorted({json.dumps(v, sort_keys=True) for v in raw})
    step = 1.0 / max(len(labels) - 1, 1)
    where = [labels.index(json.dumps(v, sort_keys=True)) * step for v in raw]
    return where, [i * step for i in range(len(labels))], [text.strip('"') for text in labels]


def parallel_coordinates(summary: Mapping[str, Any], out: Path) -> Figure:
    """One vertical axis per swept key and one for return_value; each trial a line coloured by its value."""
    from matplotlib import colormaps

    keys = list(summary["search_space"])
    figure = _figure(2.2 * (len(keys) + 1) + 1.5, 4.5)
    ax = figure.subplots()
    rows = _scored(summary)
    if not rows:
        _note(ax, "no trial has a return_value yet")
        _save(figure, out)
        return figure
    values = [row["return_value"] for row in rows]
    low, high = min(values), max(values)
    colour = colormaps["viridis_r" if summary["direction"] == "minimize" else "viridis"]
    axes_values = [_axis_values(rows, key) for key in keys]
    scaled = [(v - low) / ((high - low) or 1.0) for v in values]
    best = (summary.get("best") or {}).get("trial")
    for i, row in enumerate(rows):
        ys = [where[i] for where, _, _ in axes_values] + [scaled[i]]
        is_best = row["trial"] == best
        ax.plot(range(len(ys)), ys, color="C3" if is_best else colour(scaled[i]), linewidth=2.5 if is_best else 1.2,
                alpha=1.0 if is_best else 0.8, zorder=3 if is_best else 2)  # fmt: skip
    for position, (_, ticks, labels) in enumerate(
        [*axes_values, ([0.0, 1.0], [0.0, 1.0], [f"{low:.4g}", f"{high:.4g}"])]
    ):
        ax.axvline(position, color="0.4", linewidth=0.8)
        for tick, label in zip(ticks, labels):
            ax.text(position + 0.03, tick, label, fontsize=7, va="center")
    ax.set_xticks(range(len(keys) + 1), [*keys, "return_value"], rotation=15)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(keys) + 0.5)
    ax.set_title("Parallel coordinates (best trial in red)")
    _save(figure, out)
    return figure


def importances(summary: Mapping[str, Any]) -> dict[str, float]:
    """Optuna's fANOVA importance of each swept key for return_value over the completed trials
    (numbers as intervals, other values as categories); empty when fewer than two trials differ."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    rows = [row for row in _scored(summary) if row["status"] == COMPLETE]
    keys = list(summary["search_space"])
    if len(rows) < 2 or len({row["return_value"] for row in rows}) < 2:
        return {}
    distributions, params = {}, [dict() for _ in rows]
    for key in keys:
        raw = [row["params"].get(key) for row in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw) and min(raw) < max(raw):
            distributions[key] = FloatDistribution(float(min(raw)), float(max(raw)))
            converted = [float(v) for v in raw]
        else:
            converted = [json.dumps(v, sort_keys=True) for v in raw]
            distributions[key] = CategoricalDistribution(sorted(set(converted)))
        for values, value in zip(params, converted):
            values[key] = value
    varied = [k for k in keys if len({p[k] for p in params}) > 1]
    if not varied:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=summary["direction"])
    for row, values in zip(rows, params):
        study.add_trial(
            optuna.trial.create_trial(params=values, distributions=distributions, value=row["return_value"])
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    return dict(optuna.importance.get_param_importances(study, evaluator=evaluator, params=varied))


def importance_bars(summary: Mapping[str, Any], out: Path) -> Figure:
    """A bar per swept key: its share of return_value's variance (:func:`importances`)."""
    found = importances(summary)
    figure = _figure(6, 1.2 + 0.5 * max(len(found), 2))
    ax = figure.subplots()
    if not found:
        _note(ax, "parameter importances need at least two completed trials with different params and values")
    else:
        keys = list(found)[::-1]
        ax.barh(keys, [found[k] for k in keys], color="C0")
        ax.set(xlabel="importance (fANOVA)", xlim=(0, 1), title="Parameter importances for return_value")
        ax.grid(axis="x", alpha=0.3)
    _save(figure, out)
    return figure
