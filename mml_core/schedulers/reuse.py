"""Models of earlier projects (MML's ``reuse.models``): find them, and pick one for fine-tuning.

A project's trained models are its finished ``train_fold`` steps: each step's ``metrics.json``
records the task and fold (its params), the weights file (``results.model``), the monitored
validation loss, the heads' tasks and when it started. Planning reads those records, so a step
that loads such a model declares the weights file as an input, and Snakemake reruns the step when
the source model is retrained. Projects are looked up as ``results/<proj>/`` in the working
directory, as MML looks them up in its results root.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from mml_core.config import MisconfigurationError, select
from mml_core.schedulers.provenance import read_record
from mml_core.schedulers.steps import StepLayout

# the command whose steps store models, and MML's strategies of picking one (mode.model_selection)
TRAIN_COMMAND = "train_fold"
SELECTIONS = ("performance", "created", "random")


@dataclasses.dataclass(frozen=True)
class StoredModel:
    """One trained model of a project, as its train_fold step recorded it."""

    project: str
    task: str
    fold: int
    path: Path
    # the monitored validation loss (MML's performance; lower is better)
    performance: float | None
    # when the training step started (ISO time; MML's created)
    created: str
    # the tasks the model has heads for, pivot first
    tasks: tuple[str, ...]
    # the validated config the step ran with
    config: Path


def reused_projects(value: str | Sequence[str] | None) -> list[str]:
    """``reuse.models`` (one project, several, or none) as a list."""
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def stored_models(projects: Sequence[str]) -> list[StoredModel]:
    """Every model the finished train_fold steps of ``projects`` stored, in project and step order."""
    models = []
    for project in projects:
        layout = StepLayout.of(project)
        if not layout.root.is_dir():
            raise MisconfigurationError(
                f"reuse.models names project '{project}', but there is no {layout.root} here. Run in the directory "
                "that holds the earlier project's results/, or correct the name."
            )
        for path in layout.finished_records():
            record = read_record(path)
            results = record.get("results", {})
            weights = results.get("model")
            if record.get("command") != TRAIN_COMMAND or not weights or not Path(weights).is_file():
                continue
            task, fold = record["params"][:2]
            models.append(StoredModel(
                project=project, task=task, fold=int(fold), path=Path(weights),
                performance=results.get("monitored"), created=record["provenance"]["started"],
                tasks=tuple(results.get("tasks") or [task]), config=Path(record["config"]),
            ))  # fmt: skip
    return models


def latest_model(models: Sequence[StoredModel], task: str, fold: int) -> StoredModel | None:
    """The newest model of (task, fold) among ``models`` (MML's choice for predict and test), if any."""
    matching = [m for m in models if m.task == task and m.fold == fold]
    return max(matching, key=lambda m: m.created) if matching else None


def select_model(models: Sequence[StoredModel], strategy: str, seed: int) -> StoredModel:
    """MML's ``mode.model_selection``: the lowest validation loss, the newest, or a seeded random draw.

    Deterministic for the same records and seed: planning and the job pick the same file.
    """
    ordered = sorted(models, key=lambda m: (m.project, m.task, m.fold))
    if strategy == "performance":
        return min(ordered, key=lambda m: float("inf") if m.performance is None else m.performance)
    if strategy == "created":
        return max(ordered, key=lambda m: m.created)
    if strategy == "random":
        return random.Random(seed).choice(ordered)
    raise MisconfigurationError(f"mode.model_selection must be one of {list(SELECTIONS)}, got '{strategy}'.")


def check_architecture(models: Iterable[StoredModel], arch_name: str) -> None:
    """Stop while planning when a stored model's backbone is not ``arch.name``: loading it would fail in the job."""
    for model in models:
        trained = select(read_record(model.config), "arch.name")
        if trained != arch_name:
            raise MisconfigurationError(
                f"The model of {model.task} fold {model.fold} in project {model.project} has a {trained} backbone, but "
                f"this experiment builds arch.name={arch_name}. Set arch.name={trained} (and the same arch keys) "
                "to load it."
            )
