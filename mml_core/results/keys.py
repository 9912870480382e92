"""The names metrics are logged under: ``<phase>/<task>/<metric>`` (e.g. ``val/sk_digits/acc``).

The LightningModule logs under these names and the summary reads them back; both go through
here. Task names never contain ``/`` (MML forbids it), metric names neither.
"""

from __future__ import annotations


def metric_prefix(phase: str, task: str) -> str:
    """``<phase>/<task>/``: the prefix of a task's metrics in ``phase`` (train, val, test)."""
    return f"{phase}/{task}/"


def metric_key(phase: str, task: str, metric: str) -> str:
    """``<phase>/<task>/<metric>``."""
    return metric_prefix(phase, task) + metric


def split_metric_key(key: str) -> tuple[str, str, str] | None:
    """``(phase, task, metric)`` of a per-task key; None for other keys (``train/loss``, ``epoch``)."""
    phase, _, rest = key.partition("/")
    task, _, metric = rest.rpartition("/")
    if not (phase and task and metric):
        return None
    return phase, task, metric
