"""``TransferScheduler`` (mode ``tl``): MML's transfer learning, fine-tuning a model of an earlier project.

As MML's: the train scheduler's schedule and subroutines, and before each training the backbone
of a model trained on ``mode.pretrain_task`` is loaded (its heads are not: the new tasks get
fresh ones). The model is found in the projects of ``reuse.models`` and picked by
``mode.model_selection`` (performance: the lowest recorded validation loss; created: the newest;
random: a draw seeded with the experiment seed). ``mode.freeze`` keeps the loaded backbone fixed,
BatchNorm statistics included, and trains the heads only (linear probing).

The pick happens while planning, and the chosen ``model.pt`` is an input of every training step:
retraining the source model reruns the fine-tuning, and the job loads exactly the planned file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from mml_core.schedulers import reuse
from mml_core.schedulers.base import MisconfigurationError, reads_config
from mml_core.schedulers.training import TRAIN_KEYS, TrainingScheduler

if TYPE_CHECKING:
    import pytorch_lightning as pl

logger = logging.getLogger(__name__)

TRANSFER_KEYS = ("mode.pretrain_task", "mode.model_selection", "mode.freeze", "reuse.models")


class TransferScheduler(TrainingScheduler):
    """The train scheduler, with each training starting from the backbone of a model of ``mode.pretrain_task``."""

    def __init__(self, cfg: DictConfig):
        if not cfg.mode.pretrain_task:
            raise MisconfigurationError(
                "mode=tl fine-tunes a model trained on mode.pretrain_task: set mode.pretrain_task=<task> (and "
                "reuse.models=<the project that trained it>)."
            )
        if not reuse.reused_projects(cfg.reuse.models):
            raise MisconfigurationError(
                f"mode=tl loads the model of {cfg.mode.pretrain_task} from the projects of reuse.models, which is "
                "empty: set reuse.models=<the project that trained it> (reuse=current: this project)."
            )
        self.source: reuse.StoredModel | None = None
        super().__init__(cfg)

    def create_routine(self) -> None:
        """Pick the source model, then the train scheduler's schedule."""
        task = self.cfg.mode.pretrain_task
        if task not in self.cfg.task_list:
            raise MisconfigurationError(
                f"mode.pretrain_task {task} is not in task_list {list(self.cfg.task_list)}; add it (MML requires "
                "the same)."
            )
        projects = reuse.reused_projects(self.cfg.reuse.models)
        candidates = [m for m in reuse.stored_models(projects) if m.task == task]
        if not candidates:
            raise MisconfigurationError(
                f"No trained model of {task} in the projects of reuse.models {projects}. Train it first "
                f"(e.g. mml-snake train proj={projects[0]} task_list=[{task}] pivot.name={task}), or name the "
                "project that trained it in reuse.models."
            )
        self.source = reuse.select_model(candidates, self.cfg.mode.model_selection, self.cfg.seed)
        reuse.check_architecture([self.source], self.cfg.arch.name)
        logger.info(
            "Fine-tuning from %s (fold %d of %s, chosen by %s among %d).", self.source.path, self.source.fold,
            self.source.project, self.cfg.mode.model_selection, len(candidates),
        )  # fmt: skip
        super().create_routine()

    def step_input_files(self, command_ix: int) -> list[Path]:
        """Training steps read the source model; predict and test (without train) their stored models."""
        files = super().step_input_files(command_ix)
        if self.commands[command_ix].__name__ == "train_fold" and self.source is not None:
            files = [*files, self.source.path]
        return files

    @reads_config(*TRAIN_KEYS, *TRANSFER_KEYS)
    def train_fold(self, task_name: str, fold: int) -> None:
        """The train scheduler's training, starting from the source model's backbone."""
        super().train_fold(task_name, fold)
        self.step_results["pretrained_from"] = str(self.source.path)

    def before_training_hook(
        self,
        datamodule: pl.LightningDataModule,
        model: pl.LightningModule,
        trainer: pl.Trainer,
        fold: int,
        task_name: str,
    ) -> None:
        """Load the source model's backbone; with ``mode.freeze``, fix it (weights and BatchNorm statistics)."""
        from mml_core.models.backbones import load_backbone_weights, read_weights

        backbone = model.network.backbone
        load_backbone_weights(backbone, read_weights(self.source.path), str(self.source.path))
        logger.info("Loaded the backbone of %s (trained on %s).", self.source.path, self.source.task)
        if self.cfg.mode.freeze:
            # Lightning keeps a submodule's eval mode across validation: BatchNorm statistics stay fixed too
            backbone.requires_grad_(False)
            backbone.eval()
            logger.info("Froze the backbone: training the heads only (linear probing).")

    def after_training_hook(
        self,
        datamodule: pl.LightningDataModule,
        model: pl.LightningModule,
        trainer: pl.Trainer,
        fold: int,
        task_name: str,
    ) -> None:
        """Unfreeze the backbone again (as MML), before the weights are stored."""
        if self.cfg.mode.freeze:
            model.network.backbone.requires_grad_(True)
            model.network.backbone.train()
