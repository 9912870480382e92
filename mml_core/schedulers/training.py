"""``TrainingScheduler`` (mode ``train``): MML's training modes as steps.

Steps and their files under ``results/<proj>/steps/<step>/``:

- ``train_fold--<task>_<fold>``: ``model.pt`` (final or best weights) and the metrics history;
  checkpoints in ``results/<proj>/checkpoints/<step>/`` let an interrupted step resume.
- ``predict_fold--<task>_<fold>_<eval_on>``: ``predictions.npz`` with logits, targets and sample
  ids of the test, val and unlabeled splits (see :mod:`mml_core.results.predictions`).
- ``test_task--<task>_<eval_on>``: test metrics of every model trained on ``task``, mean and std.

Modes (``mode.*``): ``cv`` (every fold), ``nested`` (train ``pivot+nested?k``, predict its held-out
fold and the pivot's test split), ``multitask`` with ``co_tasks`` and ``task_weights`` (co-tasks
trained jointly, one head each), ``eval_on`` (other tasks predicted and tested through the pivot's
head), ``store_parameters``, ``store_best``. Params match MML's (``eval_on`` is ``None`` for the
task itself) so step names stay stable. Without ``train``, predict and test evaluate models stored
earlier (``reuse.models``, else this project's; :mod:`~mml_core.schedulers.reuse`), declared as the
steps' input files. ``create_routine`` records every model (:class:`ModelRef`) and every step's
dependencies as it appends them; the summary is built in :mod:`mml_core.results.training_summary`,
the config rules are checked in :mod:`mml_core.config.checks`. What stays (about 440 lines) is the
schedule and its three commands.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from mml_core.config.checks import check_training
from mml_core.models.archs import check_task_types
from mml_core.models.pretrained import check_weights
from mml_core.results.headlines import prediction_headline, evaluation_headline, training_headline
from mml_core.results.predictions import FILENAME as PREDICTIONS
from mml_core.results.predictions import N_EXAMPLES, OUTPUT_FIELD, write_predictions
from mml_core.results.summary import aggregate_folds
from mml_core.results.training_summary import ModelRef, plot_training, summarize_training
from mml_core.schedulers import factories, reuse
from mml_core.schedulers.base import AbstractBaseScheduler, MisconfigurationError, reads_config
from mml_core.schedulers.steps import step_name
from mml_core.tasks import ARG_SEP, TAG_SEP, split_task_name
from mml_core.tasks.types import SEGMENTATION, class_names

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from mml_core.models.network import MultiTaskNetwork

logger = logging.getLogger(__name__)

_DATA_KEYS = ("data_dir", "preprocessing")
TRAIN_KEYS = (
    *_DATA_KEYS, "seed", "trainer", "tune", "cbs", "sampling", "augmentations", "arch", "loss", "optimizer",
    "lr_scheduler", "mode.task_weights", "mode.store_best", "mode.store_parameters",
)  # fmt: skip
# evaluation reads the data as training did (normalization, fixed size), without the random part
PREDICT_KEYS = (*_DATA_KEYS, "trainer", "sampling", "augmentations", "arch", "mode.task_weights")
TEST_KEYS = (*PREDICT_KEYS, "loss", "metrics")
PREDICT_SPLITS = ("test", "val", "unlabeled")
MODEL_FILE = "model.pt"


class TrainingScheduler(AbstractBaseScheduler):
    """Model training with cross-validation, nesting, multi-task learning, prediction and testing.

    Hooks for subclasses: :meth:`before_training_hook` and :meth:`after_training_hook`, next to the
    base class's ``after_preparation_hook`` and ``before_finishing_hook``.
    """

    def __init__(self, cfg: DictConfig):
        check_training(cfg)
        check_weights(cfg.arch)
        self.n_folds = -1  # set in create_routine
        self.co_tasks: list[str] = []
        # every model of the schedule, its train_fold step, and the (task, eval_on) of each test_task step
        self.models: list[ModelRef] = []
        self.train_steps: dict[ModelRef, int] = {}
        self.tests: list[tuple[str, str | None]] = []
        # (model, evaluated task, params) of each predict_fold step
        self.predictions: list[tuple[ModelRef, str, list[Any]]] = []
        # without train: the stored model each (task, fold) is evaluated with, and each step's model files
        self.stored: dict[tuple[str, int], reuse.StoredModel] = {}
        self._model_inputs: dict[int, list[Path]] = {}
        super().__init__(cfg=cfg, available_subroutines=["train", "predict", "test"])

    # -- the schedule -------------------------------------------------------------------------

    def nested_name(self, fold: int) -> str:
        """The pivot with fold ``fold`` held out as its test split."""
        return f"{self.pivot}{TAG_SEP}nested{ARG_SEP}{fold}"

    def models_of(self, task: str) -> list[ModelRef]:
        """The models trained on ``task``, in fold order."""
        return [model for model in self.models if model.task == task]

    def _derived_from_pivot(self, task: str) -> bool:
        """The pivot or a tagged variant of it (same base task)."""
        return split_task_name(task)[0] == split_task_name(self.pivot)[0]

    def _choose_co_tasks(self) -> list[str]:
        mode = self.cfg.mode
        if not mode.multitask:
            return []
        candidates = [t for t in self.cfg.task_list if not self._derived_from_pivot(t)]
        wanted = mode.multitask - 1
        if mode.co_tasks == "random":
            if len(candidates) < wanted:
                raise MisconfigurationError(
                    f"mode.multitask={mode.multitask} needs {wanted} co-task(s) besides the pivot, but task_list "
                    f"offers {len(candidates)} ({candidates}). Add tasks to task_list or lower mode.multitask."
                )
            # seeded: every job of the experiment draws the same co-tasks
            chosen = random.Random(self.cfg.seed).sample(candidates, k=wanted)
            logger.info("Randomly selected co-learning tasks: %s", chosen)
            return chosen
        chosen = list(mode.co_tasks) if OmegaConf.is_list(mode.co_tasks) else [mode.co_tasks]
        unknown = [t for t in chosen if t not in self.cfg.task_list]
        if unknown:
            raise MisconfigurationError(f"mode.co_tasks {unknown} are not in task_list {list(self.cfg.task_list)}.")
        if len(set(chosen)) != len(chosen):
            raise MisconfigurationError(
                "mode.co_tasks repeats a task; use the identity tag (task+identity) for a second copy."
            )
        if any(self._derived_from_pivot(t) for t in chosen):
            raise MisconfigurationError("mode.co_tasks must not contain the pivot or a task derived from it.")
        if len(chosen) != wanted:
            raise MisconfigurationError(
                f"mode.co_tasks lists {len(chosen)} task(s) but mode.multitask={mode.multitask} asks for {wanted}."
            )
        return chosen

    def create_routine(self) -> None:
        """Training per fold (nested or not), prediction per fold and evaluated task, testing per task."""
        mode = self.cfg.mode
        self.n_folds = self.task_factory.num_folds(self.pivot)
        if self.n_folds < 1:
            raise MisconfigurationError(f"Pivot task {self.pivot} has no train_folds; recreate its task file.")
        self.folds = list(range(self.n_folds)) if mode.cv else [0]
        self.co_tasks = self._choose_co_tasks()
        # the architecture must serve every task a model has a head for (readable before demo data exists)
        check_task_types(self.cfg, {t: self.task_factory.task_type(t) for t in [self.pivot, *self.co_tasks]})
        weights = mode.task_weights
        if weights is not None and len(weights) != 1 + len(self.co_tasks):
            raise MisconfigurationError(
                f"mode.task_weights has {len(weights)} weight(s) for {1 + len(self.co_tasks)} task(s) "
                f"(pivot and co-tasks {self.co_tasks}); give one per task, pivot first."
            )
        if mode.nested:
            for fold in self.folds:
                name = self.nested_name(fold)
                self.task_factory.num_folds(name)  # checks the tag before anything runs
                if name not in self.cfg.task_list:
                    self.cfg.task_list.append(name)
            # each nested task trains on its fold 0 and stands for the pivot's outer fold
            self.models = [ModelRef(self.nested_name(fold), 0, self.pivot, fold) for fold in self.folds]
        else:
            self.models = [ModelRef(self.pivot, fold, self.pivot, fold) for fold in self.folds]
        eval_on = list(mode.eval_on or [])
        unknown = [t for t in eval_on if t not in self.cfg.task_list]
        if unknown:
            raise MisconfigurationError(
                f"mode.eval_on {unknown} are not in task_list {list(self.cfg.task_list)}; add them to task_list."
            )
        self._check_eval_on(on_disk_only=True)
        evaluated: list[str | None] = [None, *eval_on]
        if "train" in self.subroutines:
            for model in self.models:
                self.train_steps[model] = self.add_step(self.train_fold, [model.task, model.fold], after=[])
        elif {"predict", "test"} & set(self.subroutines):
            self.stored = self._stored_models()
        if "predict" in self.subroutines:
            for model in self.models:
                trained = [self.train_steps[model]] if model in self.train_steps else []
                # with nesting, the pivot's own test split too, to compare with non-nested runs (as MML)
                targets = [t for e in evaluated for t in ([e, self.pivot] if mode.nested and e is None else [e])]
                for target in targets:
                    params = [model.task, model.fold, target]
                    ix = self.add_step(self.predict_fold, params, after=trained)
                    self._model_inputs[ix] = self._stored_files([model])
                    self.predictions.append((model, target or model.task, params))
        if "test" in self.subroutines:
            for task in dict.fromkeys(model.task for model in self.models):
                trained = [self.train_steps[m] for m in self.models_of(task) if m in self.train_steps]
                for target in evaluated:
                    ix = self.add_step(self.test_task, [task, target], after=trained)
                    self._model_inputs[ix] = self._stored_files(self.models_of(task))
                    self.tests.append((task, target))
            self._check_test_splits()

    def _check_test_splits(self) -> None:
        """test_task scores every model on the test split of the task it evaluates: none may be empty
        (checked where the task file exists; the demo tasks have test splits)."""
        for task, eval_on in self.tests:
            target = eval_on or task
            task_file = self.task_factory.task_file(target)
            if task_file.is_file() and not self.task_factory.load_description(target).test_samples:
                raise MisconfigurationError(
                    f"Task '{target}' ({task_file}) has no test samples, but mode.subroutines includes test, which scores "
                    "every model on the test split. Drop test (--config 'mode={subroutines: [train, predict]}'), or "
                    "give the task a test split (python -m mml_core.tasks import-folder ... --test-fraction 0.2)."
                )

    def _stored_models(self) -> dict[tuple[str, int], reuse.StoredModel]:
        """Predict and test without train evaluate models trained earlier: those of the reuse.models
        projects (MML), else this project's own; the newest of each (task, fold), as MML picks."""
        projects = reuse.reused_projects(self.cfg.reuse.models)
        own = [self.cfg.proj] if self.layout.root.is_dir() else []
        available = reuse.stored_models(projects or own)
        found = {(m.task, m.fold): reuse.latest_model(available, m.task, m.fold) for m in self.models}
        missing = [f"{task} fold {fold}" for (task, fold), model in found.items() if model is None]
        if missing:
            where = f"the projects of reuse.models {projects}" if projects else f"this project ({self.layout.root})"
            raise MisconfigurationError(
                f"mode.subroutines {self.subroutines} evaluates stored models without training them, but no trained "
                f"model of {', '.join(missing)} is in {where}. Add train to mode.subroutines, or set reuse.models "
                "to the project that trained them (with the same mode.cv and mode.nested)."
            )
        stored = {key: model for key, model in found.items() if model is not None}
        reuse.check_architecture(stored.values(), self.cfg.arch.name)
        return stored

    def _stored_files(self, models: list[ModelRef]) -> list[Path]:
        return [self.stored[(m.task, m.fold)].path for m in models if (m.task, m.fold) in self.stored]

    def step_input_files(self, command_ix: int) -> list[Path]:
        """The stored model files a predict or test step evaluates (without train); retraining them reruns it."""
        return self._model_inputs.get(command_ix, [])

    def _check_eval_on(self, on_disk_only: bool = False) -> None:
        """eval_on tasks go through the pivot's head: same task type and number of classes."""
        for task in self.cfg.mode.eval_on or []:
            if on_disk_only and not all(self.task_factory.task_file(t).is_file() for t in (self.pivot, task)):
                continue  # demo data not written yet: checked again in after_preparation_hook
            pivot, other = self.get_struct(self.pivot), self.get_struct(task)
            if pivot.task_type != other.task_type or pivot.num_classes != other.num_classes:
                raise MisconfigurationError(
                    f"mode.eval_on task {task} ({other.task_type}, {other.num_classes} classes) cannot be evaluated "
                    f"through the head of pivot {self.pivot} ({pivot.task_type}, {pivot.num_classes} classes): task "
                    "type and number of classes must match. Remove it from mode.eval_on."
                )

    def step_tasks(self, command_ix: int) -> list[str]:
        """The base rule's tasks plus the co-tasks whose heads every model of this experiment has."""
        tasks = super().step_tasks(command_ix)
        if self.commands[command_ix].__name__ in ("train_fold", "predict_fold", "test_task"):
            tasks = tasks + [t for t in self.co_tasks if t not in tasks]
        return tasks

    def command_config(self, command: str) -> dict[str, Any]:
        """The declared keys, plus the resolved co-tasks (a random draw depends on task_list and seed)."""
        slice_ = super().command_config(command)
        if command in ("train_fold", "predict_fold", "test_task") and self.co_tasks:
            slice_["co_tasks"] = list(self.co_tasks)
        return slice_

    def result_headline(self, command_ix: int) -> str:
        """Epochs and validation loss of a training step, prediction counts, the test metrics."""
        headline = {"train_fold": training_headline, "predict_fold": prediction_headline, "test_task": evaluation_headline}
        command = self.commands[command_ix].__name__
        return headline[command](self.step_results) if command in headline else super().result_headline(command_ix)

    # -- hooks ----------------------------------------------------------------------------------

    def after_preparation_hook(self) -> None:
        """Check eval_on compatibility once the task files exist (demo data is written by then)."""
        self._check_eval_on()

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
        """Summary: test metrics per evaluated task (mean/std over folds; nested runs over outer
        folds), else the last validation metrics; ``return_value`` is the mean final (or best)
        validation loss over the trained models (as in MML); learning curves, confusion matrices, ROC and
        PR curves, reliability diagrams and per-class metrics."""
        trained = [
            (model, self.read_step_results(self.train_fold, [model.task, model.fold]))
            for model in self.models if model in self.train_steps
        ]  # fmt: skip
        tested = []
        for task, eval_on in self.tests:
            per_fold = self.read_step_results(self.test_task, [task, eval_on])["per_fold"]
            models = {model.fold: model for model in self.models_of(task)}
            tested.append((eval_on, {models[int(fold)]: values for fold, values in per_fold.items()}))
        summary = summarize_training(self.pivot, trained, tested)
        self.return_value = summary.return_value
        self.summary["tasks"] = summary.tasks
        if summary.monitored:
            self.summary["monitored"] = summary.monitored
        predictions: dict[str, dict[int, Path]] = {}
        for model, evaluated, params in self.predictions:
            path = self.step_dir(step_name("predict_fold", params)) / PREDICTIONS
            predictions.setdefault(evaluated, {})[model.reported_fold] = path
        structs = {task: self.get_struct(task) for task in {*predictions, *summary.histories}}
        names = {task: class_names(struct.idx_to_class) for task, struct in structs.items()}
        task_types = {task: struct.task_type for task, struct in structs.items()}
        plot_training(self.results_dir, summary.histories, predictions, names, task_types)

    # -- commands -------------------------------------------------------------------------------

    def _model_tasks(self, task_name: str) -> list[str]:
        """The tasks a model of ``task_name`` has heads for: the task itself, then the co-tasks."""
        return [task_name, *self.co_tasks]

    def _model_path(self, task_name: str, fold: int) -> Path:
        """Where this experiment's training of (task, fold) stores the weights."""
        return self.step_dir(step_name("train_fold", [task_name, fold])) / MODEL_FILE

    def _load_network(self, task_name: str, fold: int) -> MultiTaskNetwork:
        """The trained network of (task, fold) (trained here, or stored earlier: :meth:`_stored_models`),
        with the heads it was trained with: the task's and its co-tasks'."""
        from mml_core.training.safe_load import load_checkpoint, load_problem

        stored = self.stored.get((task_name, fold))
        path = stored.path if stored else self._model_path(task_name, fold)
        if not path.is_file():
            raise FileNotFoundError(
                f"No trained model for task {task_name} fold {fold} at {path}. Include 'train' in "
                "mode.subroutines (or train this fold first) and keep mode.store_parameters=true."
            )
        try:
            saved = load_checkpoint(path)
        except Exception as exc:  # torch raises many types for truncated, foreign or unsafe files
            aside = path.with_name(path.name + ".corrupt")
            path.replace(aside)
            raise RuntimeError(
                f"The model file {path} {load_problem(exc)}; moved it to {aside.name}. Run the same snakemake "
                "command again: planning sees the missing model and trains that fold again."
            ) from None
        structs = [self.get_struct(t) for t in saved.get("tasks") or self._model_tasks(task_name)]
        network = factories.build_network(self.resolved_cfg, structs, pretrained=False)
        network.load_state_dict(saved["state_dict"])
        return network

    def _evaluated(self, task_name: str, eval_on: str | None) -> str:
        """The task whose data a model of ``task_name`` evaluates (through ``task_name``'s head)."""
        target = eval_on or task_name
        if target != task_name:
            logger.info("Evaluating task %s through the head of %s.", self.highlight_text(target), task_name)
        return target

    @reads_config(*TRAIN_KEYS)
    def train_fold(self, task_name: str, fold: int) -> None:
        """Train a model on ``fold`` of ``task_name`` (and the co-tasks); resumes from the step's last checkpoint."""
        import torch

        from mml_core.io import atomic_write
        from mml_core.training.resume import checkpoint_mismatch
        from mml_core.training.safe_load import load_checkpoint

        logger.info("Starting training for task %s and fold %d.", self.highlight_text(task_name), fold)
        structs = [self.get_struct(t) for t in self._model_tasks(task_name)]
        datamodule = self.create_datamodule(structs, fold=fold)
        model = self.create_model(structs, task_weights=self.cfg.mode.task_weights)
        monitor = (f"val/{task_name}/loss", "min") if self.cfg.mode.store_best else None
        trainer = self.create_trainer(monitor=monitor, metrics_callback=True)
        self.before_training_hook(datamodule=datamodule, model=model, trainer=trainer, fold=fold, task_name=task_name)
        resume = self.resume_checkpoint()
        if resume:
            mismatch = checkpoint_mismatch(model, resume)
            if mismatch:
                raise MisconfigurationError(
                    f"Checkpoint {resume} was written by a different model ({mismatch}), although the step's "
                    f"config is unchanged (the code changed?). To train this step from scratch, move "
                    f"{resume.parent} away; to resume, restore the code or config it was trained with."
                )
            logger.info("Resuming training from checkpoint %s.", resume)
        self.lightning_tune(trainer=trainer, model=model, datamodule=datamodule)
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
        self.after_training_hook(datamodule=datamodule, model=model, trainer=trainer, fold=fold, task_name=task_name)
        history = self.metrics_callback.metrics
        key = f"val/{task_name}/loss"
        state = model.network.state_dict()
        best = self.checkpoint_callback.best_model_path if monitor else ""
        if best:
            monitored = float(self.checkpoint_callback.best_model_score)
            checkpoint = load_checkpoint(Path(best))["state_dict"]
            state = {k.removeprefix("network."): v for k, v in checkpoint.items() if k.startswith("network.")}
        else:
            monitored = next((r[key] for r in reversed(history) if key in r), None)
        if monitored is None:
            raise RuntimeError(
                f"No '{key}' was recorded during training; enable validation (trainer.limit_val_batches > 0)."
            )
        if self.cfg.mode.store_parameters:
            atomic_write(
                self._model_path(task_name, fold),
                lambda tmp: torch.save({"state_dict": state, "task": task_name, "fold": fold,
                                        "tasks": self._model_tasks(task_name)}, tmp),
            )
        self.step_results.update(
            monitored=monitored,
            epochs=trainer.current_epoch,
            history=history,
            resumed_from=str(resume) if resume else None,
            model=str(self._model_path(task_name, fold)) if self.cfg.mode.store_parameters else None,
            best_checkpoint=best or None,
            tasks=self._model_tasks(task_name),
        )
        logger.info("Finished training for task %s and fold %d.", self.highlight_text(task_name), fold)

    @reads_config(*PREDICT_KEYS)
    def predict_fold(self, task_name: str, fold: int, eval_on: str | None = None) -> None:
        """Predict the test, val and unlabeled splits of ``eval_on`` (default: the task) with the model of ``fold``."""
        from mml_core.models.inference import device_for, predict

        logger.info("Starting predicting for task %s and fold %d.", self.highlight_text(task_name), fold)
        network = self._load_network(task_name, fold)
        target = self._evaluated(task_name, eval_on)
        struct = self.get_struct(target)
        field = OUTPUT_FIELD[struct.task_type]
        # plain torch: a step that only predicts does not import Lightning (see the runner)
        datasets = factories.build_split_datasets(self.resolved_cfg, self.task_factory, struct, fold)
        device = device_for(self.cfg.trainer.get("accelerator", "auto"))
        predictions, counts = {}, {}
        for split in PREDICT_SPLITS:
            dataset = datasets[split]
            # the task's own head (index 0); eval_on tasks go through it too
            loader = factories.build_eval_loader(self.resolved_cfg, dataset)
            result = predict(network, loader, head=0, device=device, task_type=struct.task_type)
            predictions[split] = {
                field: result[field],
                "targets": result["targets"],
                "sample_ids": [dataset.ids[i] for i in result["indices"]],
            }
            if struct.task_type == SEGMENTATION:  # a few inputs for the overlay plots
                predictions[split]["examples"] = [dataset.image(i) for i in result["indices"][:N_EXAMPLES]]
            counts[split] = len(result["indices"])
        path = write_predictions(self.step_dir() / PREDICTIONS, predictions, struct.task_type)
        self.step_results.update(predictions=str(path), counts=counts, evaluated=target)
        logger.info("Finished predicting for task %s and fold %d.", self.highlight_text(task_name), fold)

    @reads_config(*TEST_KEYS)
    def test_task(self, task_name: str, eval_on: str | None = None) -> None:
        """Test every model trained on ``task_name`` on the test split of ``eval_on`` (default: the task)."""
        logger.info("Starting testing for task %s.", self.highlight_text(task_name))
        per_fold = {}
        target = self._evaluated(task_name, eval_on)
        for ref in self.models_of(task_name):
            fold = ref.fold
            network = self._load_network(task_name, fold)
            # a stored model of another project may have other co-tasks than this config: equal weights then
            own_heads = network.task_names == self._model_tasks(task_name)
            structs = [self.get_struct(t) for t in network.task_names]
            model = self.create_model(structs, self.cfg.mode.task_weights if own_heads else None, pretrained=False)
            model.network.load_state_dict(network.state_dict())
            if target != task_name:
                model.setup_redirection(head=task_name, task=target)
            model.set_bootstrap(self.cfg.metrics.bootstrap)
            datamodule = self.create_datamodule(self.get_struct(target), fold=0)
            trainer = self.create_trainer(metrics_callback=True)
            trainer.test(model=model, datamodule=datamodule)
            prefix = f"test/{target}/"
            per_fold[fold] = {
                k.removeprefix(prefix): v for k, v in self.metrics_callback.metrics[-1].items() if k.startswith(prefix)
            }
            logger.info("Fold %d: %s", fold, per_fold[fold])
        if not per_fold:
            raise MisconfigurationError(
                f"No model of task {task_name} is part of this schedule; test_task tests the models trained here."
            )
        self.step_results.update(per_fold=per_fold, metrics=aggregate_folds(per_fold), evaluated=eval_on or task_name)
        logger.info("Finished testing for task %s.", self.highlight_text(task_name))
