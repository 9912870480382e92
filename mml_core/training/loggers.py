"""Experiment loggers from ``logging.exp_logger``: CSV (the default), TensorBoard, MLflow, or any
Lightning logger, several at once.

MML's config takes one spec, ``{_target_: import.path, **arguments}``; here ``exp_logger`` is also
one of the names ``csv``, ``tensorboard``, ``mlflow`` or a list of names and specs. Every logger of
a step gets the whole config as flat hyperparameters (``trainer.max_epochs``, ``arch.name``, ...,
plus ``step``) and names a person can read: experiment = ``proj``, run = step name. Where they
write, unless the spec says otherwise (:class:`LoggerPlaces`):

- CSV: ``results/<proj>/logs/<step>/version_N/`` (``metrics.csv``, ``hparams.yaml``)
- TensorBoard: ``results/<proj>/tensorboard/<step>/version_N/`` (``tensorboard --logdir results``)
- MLflow: the local file store ``results/mlruns``, experiment ``<proj>``, run ``<step>``
  (``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri results/mlruns``); offline, no
  server, no database.

Loggers number their runs (``version_N``; MLflow: a new run), so a resumed or rerun step adds one
instead of overwriting the log of the interrupted attempt.
"""

from __future__ import annotations

import dataclasses
import fcntl
import inspect
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mml_core.config import instantiate, locate

logger = logging.getLogger(__name__)

PRESETS = {
    "csv": "pytorch_lightning.loggers.CSVLogger",
    "tensorboard": "pytorch_lightning.loggers.TensorBoardLogger",
    "mlflow": "pytorch_lightning.loggers.MLFlowLogger",
}
# MLflow 3 refuses its file store unless asked for it; a run must work offline without a database
MLFLOW_FILE_STORE_ENV = "MLFLOW_ALLOW_FILE_STORE"


@dataclasses.dataclass(frozen=True)
class LoggerPlaces:
    """Where and under which names the loggers of one step write."""

    proj: str
    step: str
    csv_dir: Path
    tensorboard_dir: Path
    mlflow_store: Path


def logger_specs(value: Any) -> list[dict[str, Any]]:
    """``logging.exp_logger`` as a list of ``{_target_, ...}`` specs (null, a name, a spec, or a list)."""
    if value is None:
        return []
    specs = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            if item not in PRESETS:
                raise ValueError(
                    f"Unknown logger '{item}' in logging.exp_logger; use {', '.join(PRESETS)} or a spec "
                    "{_target_: package.module.LoggerClass, ...}."
                )
            specs.append({"_target_": PRESETS[item]})
        elif item.get("_target_"):
            specs.append(dict(item))
    return specs


def _defaults(cls: type, places: LoggerPlaces) -> dict[str, Any]:
    """The arguments this project gives a logger class unless its spec sets them."""
    from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger

    if issubclass(cls, MLFlowLogger):
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"file:{places.mlflow_store.resolve()}"
        return {"experiment_name": places.proj, "run_name": places.step, "tracking_uri": uri,
                "tags": {"proj": places.proj, "step": places.step}}  # fmt: skip
    if issubclass(cls, TensorBoardLogger):
        return {"save_dir": str(places.tensorboard_dir), "name": places.step}
    return {"save_dir": str(places.csv_dir), "name": places.step}


def _ensure_mlflow_experiment(tracking_uri: str, name: str) -> None:
    """Create the experiment of a file store once: parallel steps of one project would otherwise race
    to create it and make several experiments of the same name."""
    from mlflow.tracking import MlflowClient

    store = Path(tracking_uri.removeprefix("file:"))
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".mml_core-experiments.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = MlflowClient(tracking_uri=tracking_uri)
        if client.get_experiment_by_name(name) is None:
            client.create_experiment(name)


def build_loggers(value: Any, places: LoggerPlaces, hparams: Mapping[str, Any]) -> list[Any]:
    """The loggers of ``logging.exp_logger`` for one step, each with ``hparams`` logged."""
    loggers = []
    for spec in logger_specs(value):
        cls = locate(spec["_target_"])
        params = inspect.signature(cls).parameters
        defaults = {k: v for k, v in _defaults(cls, places).items() if k in params and k not in spec}
        arguments = {**spec, **defaults}
        uri = arguments.get("tracking_uri")
        if isinstance(uri, str) and uri.startswith("file:"):
            os.environ.setdefault(MLFLOW_FILE_STORE_ENV, "true")
            _ensure_mlflow_experiment(uri, str(arguments.get("experiment_name", places.proj)))
        built = instantiate(spec, **defaults)
        built.log_hyperparams(dict(hparams))
        logger.debug("Logging to %s", type(built).__name__)
        loggers.append(built)
    return loggers
