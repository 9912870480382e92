"""MML's ``use_best_params``: an experiment with the params of a finished sweep's best trial.

``use_best_params: true`` takes them from this proj's sweep, a string from the sweep of that
proj (its ``results/<proj>/sweep.json``); they overwrite the config's values, and the experiment
runs as one experiment under ``results/<proj>/`` (beside the sweep's trials when it is the same
proj). Its config records the params, so a sweep that later finds a better trial reruns exactly
the steps those params change.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from mml_core.schedulers.steps import StepLayout
from mml_core.sweeps.outputs import SWEEP_JSON
from mml_core.sweeps.study import SweepError
from mml_core.sweeps.trials import set_key

logger = logging.getLogger(__name__)


def best_params_source(cfg: DictConfig) -> str | None:
    """The proj whose sweep ``use_best_params`` names, or None. Snakemake's ``--config
    use_best_params=true`` arrives as the string 'true': YAML's booleans count as booleans."""
    choice = cfg.use_best_params
    if isinstance(choice, str) and isinstance(yaml.safe_load(choice), bool):
        choice = yaml.safe_load(choice)
    if choice is False:
        return None
    return cfg.proj if choice is True else str(choice)


def with_best_params(cfg: DictConfig) -> dict[str, Any]:
    """The plain config of ``cfg`` with the best params of the sweep ``use_best_params`` names."""
    source = best_params_source(cfg)
    path = StepLayout.of(source).root / SWEEP_JSON
    if not path.is_file():
        raise SweepError(
            f"use_best_params: no finished sweep of proj '{source}' ({path} does not exist). Run that sweep to the "
            "end first (its summary names the best trial), or set use_best_params: false."
        )
    best = json.loads(path.read_text()).get("best")
    if not best:
        raise SweepError(
            f"use_best_params: the sweep in {path} has no completed trial to take params from. Rerun it, or set "
            "use_best_params: false."
        )
    config = OmegaConf.to_container(cfg, resolve=True)
    for key, value in best["params"].items():
        set_key(config, key, value)
    config["search_space"] = {}
    logger.info("use_best_params: trial %s of %s: %s", best["trial"], path, best["params"])
    return config
