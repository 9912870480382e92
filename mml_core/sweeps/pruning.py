"""Optuna pruning inside a trial's training (``hpo.pruning``): a Lightning callback.

The sweep adds it to each trial's ``cbs`` (so it is built like any configured callback, and turning
pruning on or off reruns training, whose outcome it changes). After every validation it reports
the monitored validation loss to the trial (step: the epoch; with several folds the first report of
an epoch counts) and asks the study's pruner; when the pruner says stop, the trial is marked
(user attribute, read when the batch job tells it PRUNED) and training ends after this epoch. The
rest of the trial runs as usual on the model trained so far, so every step keeps its file target.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl

from mml_core.sweeps.study import PRUNED_ATTR, open_storage

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)


class OptunaPruning(pl.Callback):
    """Report ``monitor`` per epoch to trial ``trial`` of ``study_name`` and stop when ``pruner`` says so."""

    def __init__(
        self, storage: str, study_name: str, trial: int, monitor: str, pruner: optuna.pruners.BasePruner
    ):
        self.storage, self.study_name, self.number, self.monitor, self.pruner = (
            storage,
            study_name,
            trial,
            monitor,
            pruner,
        )
        self._trial: optuna.Trial | None = None

    def _open(self) -> optuna.Trial:
        import optuna

        if self._trial is None:
            storage = open_storage(self.storage, create=False)
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=self.pruner)
            study_id = storage.get_study_id_from_name(self.study_name)
            self._trial = optuna.Trial(
                study, storage.get_trial_id_from_study_id_trial_number(study_id, self.number)
            )
        return self._trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Report this epoch's value; stop training when the trial is hopeless."""
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or not math.isfinite(float(value)):
            return
        trial = self._open()
        epoch = trainer.current_epoch
        trial.report(float(value), step=epoch)
        if trial.should_prune():
            trial.set_user_attr(PRUNED_ATTR, epoch)
            trainer.should_stop = True
            logger.info(
                "Pruned trial %d after epoch %d (%s=%.4g).", self.number, epoch, self.monitor, float(value)
            )

    def state_dict(self) -> dict[str, Any]:
        """Nothing to restore on resume: the trial's reports live in the study."""
        return {}
