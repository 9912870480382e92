"""``TrainingScheduler`` (mode ``train``): train every fold of the pivot, predict, test.

Steps and their files under ``results/<proj>/steps/<step>/``:

- ``train_fold--<task>_<fold>``: ``model.pt`` (final weights) and the metrics history;
  checkpoints in ``results/<proj>/checkpoints/<step>/`` let an interrupted step resume.
- ``predict_fold--<task>_<fold>_<eval_on>``: ``predictions.npz`` with logits, targets and sample
  ids of the test, val and unlabeled splits (see :mod:`mml_core.results.predictions`).
- ``test_task--<task>_<eval_on>``: test metrics of every trained fold's model, mean and std.

Params match MML's (``eval_on`` is ``None`` for the task itself) so step names stay stable.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from mml_core.results.predictions import FILENAME as PREDICTIONS
from mml_core.results.predictions import write_predictions
from mml_core.results.summary import aggregate, aggregate_folds
from mml_core.schedulers.base import AbstractBaseScheduler, MisconfigurationError, reads_config, step_name

if TYPE_CHECKING:
    import pytorch_lightning as pl

logger = logging.getLogger(__name__)

TRAIN_KEYS = (
    "data_dir", "preprocessing", "seed", "trainer", "tune", "cbs", "sampling", "arch", "optimizer", "lr_scheduler",
)  # fmt: skip
EVAL_KEYS = ("data_dir", "preprocessing", "trainer", "sampling", "arch")
PREDICT_SPLITS = ("test", "val", "unlabeled")


class TrainingScheduler(AbstractBaseScheduler):
    """Model training with cross-validation, prediction and testing (MML's TrainingScheduler).

    Hooks for subclasses: :meth:`before_training_hook` and :meth:`after_training_hook`, next to the
    base class's ``after_preparation_hook`` and ``before_finishing_hook``.
    """

    def __init__(self, cfg: DictConfig):
        if not cfg.pivot.name:
            raise MisconfigurationError(
                "The train scheduler needs a pivot task: set pivot.name (e.g. --config 'pivot={name: sk_digits}')."
            )
        self.n_folds = -1  # set in create_routine
        super().__init__(cfg=cfg, available_subroutines=["train", "predict", "test"])

    def create_routine(self) -> None:
        """Training of every (or the first) pivot fold, prediction per fold, testing of the task."""
        self.n_folds = self.task_factory.num_folds(self.pivot)
        if self.n_folds < 1:
            raise MisconfigurationError(f"Pivot task {self.pivot} has no train_folds; recreate its task file.")
        self.folds = list(range(self.n_folds)) if self.cfg.mode.cv else [0]
        if "train" in self.subroutines:
            for fold in self.folds:
                self.commands.append(self.train_fold)
                self.params.append([self.pivot, fold])
        if "predict" in self.subroutines:
            for fold in self.folds:
                self.commands.append(self.predict_fold)
                self.params.append([self.pivot, fold, None])
        if "test" in self.subroutines:
            self.commands.append(self.test_task)
            self.params.append([self.pivot, None])

    def step_dependencies(self, command_ix: int) -> list[int]:
        """Predict needs its fold's training, test needs every fold's training, training needs nothing."""
        command, params = self.commands[command_ix].__name__, self.params[command_ix]
        if command == "predict_fold":
            wanted = {step_name("train_fold", params[:2])}
        elif command == "test_task":
            wanted = {step_name("train_fold", [params[0], fold]) for fold in self.folds}
        else:
            return []
        return [ix for ix, name in enumerate(self.step_names) if name in wanted]

    # -- hooks ----------------------------------------------------------------------------------

    def before_training_hook(
        self,
        datamodule: pl.LightningDataModule,
        model: pl.LightningModule,
        trainer: pl.Trainer,
        fold: int,
        task_name: str,
    ) -> None:
        """Modify data, model or trainer before fitting (and before tuning)."""

    def after_training_hook(
        self,
        datamodule: pl.LightningDataModule,
        model: pl.LightningModule,
        trainer: pl.Trainer,
        fold: int,
        task_name: str,
    ) -> None:
        """Inspect or modify the trained model before its weights are stored."""

    def before_finishing_hook(self) -> None:
        """Summary: test metrics per task (mean/std over folds), else the last validation metrics;
        ``return_value`` is the mean final validation loss over the trained folds (as in MML)."""
        monitored, val_per_fold, histories = [], {}, {}
        for ix, name in enumerate(self.step_names):
            if self.commands[ix].__name__ != "train_fold":
                continue
            results = self.read_step_results("train_fold", self.params[ix])
            monitored.append(results["monitored"])
            histories.setdefault(self.params[ix][0], {})[self.params[ix][1]] = results["history"]
            prefix = f"val/{self.params[ix][0]}/"
            last = results["history"][-1] if results["history"] else {}
            val_per_fold[self.params[ix][1]] = {k.removeprefix(prefix): v for k, v in last.items() if k.startswith(prefix)}
        if monitored:
            self.return_value = statistics.fmean(monitored)
        tasks: dict[str, Any] = {}
        for ix, name in enumerate(self.step_names):
            if self.commands[ix].__name__ == "test_task":
                task, eval_on = self.params[ix]
                tasks[eval_on or task] = self.read_step_results("test_task", self.params[ix])["metrics"]
        if not tasks and val_per_fold:
            tasks[self.pivot] = aggregate_folds(val_per_fold)
        self.summary["tasks"] = tasks
        if monitored:
            self.summary["monitored"] = {"metric": f"val/{self.pivot}/loss", **aggregate(monitored)}
        self.plot_results(histories)

    def plot_results(self, histories: dict[str, dict[int, list[dict[str, float]]]]) -> None:
        """Learning curves per trained task; a confusion matrix per predicted task (test split, folds pooled)."""
        from mml_core.results import outputs
        from mml_core.results.plots import confusion_matrix, learning_curves
        from mml_core.results.predictions import pooled_predictions

        for task, per_fold in histories.items():
            learning_curves(per_fold, task, outputs.task_plot(self.results_dir, outputs.LEARNING_CURVES_DIR, task))
        predictions: dict[str, list[Path]] = {}
        for ix, name in enumerate(self.step_names):
            if self.commands[ix].__name__ == "predict_fold":
                task, _, eval_on = self.params[ix]
                predictions.setdefault(eval_on or task, []).append(self.step_dir(name) / PREDICTIONS)
        for task, paths in predictions.items():
            targets, predicted = pooled_predictions(paths, split="test")
            if not len(targets):
                logger.warning("Task %s has no test predictions; no confusion matrix.", task)
                continue
            struct = self.get_struct(task)
            folds = f"{len(paths)} fold{'s' if len(paths) > 1 else ''}"
            confusion_matrix(
                targets,
                predicted,
                [struct.idx_to_class[i] for i in sorted(struct.idx_to_class)],
                outputs.task_plot(self.results_dir, outputs.CONFUSION_MATRIX_DIR, task),
                title=f"{task}: test split, {folds} pooled ({len(targets)} predictions)",
            )

    # -- commands -------------------------------------------------------------------------------

    def _model_path(self, task_name: str, fold: int):
        return self.step_dir(step_name("train_fold", [task_name, fold])) / "model.pt"

    def _load_model(self, task_name: str, fold: int) -> pl.LightningModule:
        import torch

        path = self._model_path(task_name, fold)
        if not path.is_file():
            raise FileNotFoundError(
                f"No trained model for task {task_name} fold {fold} at {path}. "
                "Include 'train' in mode.subroutines (or train this fold first)."
            )
        model = self.create_model([self.get_struct(task_name)])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
        return model

    @reads_config(*TRAIN_KEYS)
    def train_fold(self, task_name: str, fold: int) -> None:
        """Train a model on ``fold`` of ``task_name``; resumes from the step's last checkpoint."""
        import torch

        from mml_core.io import atomic_write

        logger.info("Starting training for task %s and fold %d.", self.highlight_text(task_name), fold)
        struct = self.get_struct(task_name)
        datamodule = self.create_datamodule([struct], fold=fold)
        model = self.create_model([struct])
        trainer = self.create_trainer(metrics_callback=True)
        self.before_training_hook(datamodule=datamodule, model=model, trainer=trainer, fold=fold, task_name=task_name)
        resume = self.resume_checkpoint()
        if resume:
            from mml_core.training.resume import checkpoint_mismatch

            mismatch = checkpoint_mismatch(model, resume)
            if mismatch:
                raise MisconfigurationError(
                    f"Checkpoint {resume} was written by a different model ({mismatch}), although the step's "
                    f"config is unchanged (the code changed?). To train this step from scratch, move "
                    f"{resume.parent} away; to resume, restore the code or config it was trained with."
                )
            logger.info("Resuming training from checkpoint %s.", resume)
        self.lightning_tune(trainer=trainer, model=model, datamodule=datamodule)
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=resume)
        self.after_training_hook(datamodule=datamodule, model=model, trainer=trainer, fold=fold, task_name=task_name)
        history = self.metrics_callback.metrics
        key = f"val/{task_name}/loss"
        monitored = next((r[key] for r in reversed(history) if key in r), None)
        if monitored is None:
            raise RuntimeError(
                f"No '{key}' was recorded during training; enable validation (trainer.limit_val_batches > 0)."
            )
        atomic_write(
            self._model_path(task_name, fold),
            lambda tmp: torch.save({"state_dict": model.state_dict(), "task": task_name, "fold": fold}, tmp),
        )
        self.step_results.update(
            monitored=monitored,
            epochs=trainer.current_epoch,
            history=history,
            resumed_from=str(resume) if resume else None,
            model=str(self._model_path(task_name, fold)),
        )
        logger.info("Finished training for task %s and fold %d.", self.highlight_text(task_name), fold)

    @reads_config(*EVAL_KEYS)
    def predict_fold(self, task_name: str, fold: int, eval_on: str | None = None) -> None:
        """Predict the test, val and unlabeled splits with the model of ``fold``."""
        import torch

        if eval_on not in (None, task_name):
            raise MisconfigurationError("Predicting on another task (eval_on) is not supported yet.")
        logger.info("Starting predicting for task %s and fold %d.", self.highlight_text(task_name), fold)
        model = self._load_model(task_name, fold)
        datamodule = self.create_datamodule(self.get_struct(task_name), fold=fold)
        trainer = self.create_trainer()
        predictions, counts = {}, {}
        datamodule.setup()
        for split in PREDICT_SPLITS:
            datamodule.predict_on = split
            dataset = datamodule.datasets[task_name][split]
            batches = trainer.predict(model=model, datamodule=datamodule) if len(dataset) else []
            logits = torch.cat([b["logits"] for b in batches]) if batches else torch.empty(0)
            targets = torch.cat([b["targets"] for b in batches]) if batches else torch.empty(0, dtype=torch.long)
            indices = torch.cat([b["indices"] for b in batches]).tolist() if batches else []
            predictions[split] = {
                "logits": logits.float().numpy(),
                "targets": targets.numpy(),
                "sample_ids": [dataset.ids[i] for i in indices],
            }
            counts[split] = len(indices)
        path = write_predictions(self.step_dir() / PREDICTIONS, predictions)
        self.step_results.update(predictions=str(path), counts=counts)
        logger.info("Finished predicting for task %s and fold %d.", self.highlight_text(task_name), fold)

    @reads_config(*EVAL_KEYS)
    def test_task(self, task_name: str, eval_on: str | None = None) -> None:
        """Test every trained fold's model on the test split; metrics per fold, mean and std."""
        if eval_on not in (None, task_name):
            raise MisconfigurationError("Testing on another task (eval_on) is not supported yet.")
        logger.info("Starting testing for task %s.", self.highlight_text(task_name))
        struct = self.get_struct(task_name)
        per_fold = {}
        for fold in self.folds:
            model = self._load_model(task_name, fold)
            datamodule = self.create_datamodule(struct, fold=fold)
            trainer = self.create_trainer(metrics_callback=True)
            trainer.test(model=model, datamodule=datamodule)
            prefix = f"test/{task_name}/"
            per_fold[fold] = {
                k.removeprefix(prefix): v for k, v in self.metrics_callback.metrics[-1].items() if k.startswith(prefix)
            }
            logger.info("Fold %d: %s", fold, per_fold[fold])
        self.step_results.update(per_fold=per_fold, metrics=aggregate_folds(per_fold))
        logger.info("Finished testing for task %s.", self.highlight_text(task_name))
