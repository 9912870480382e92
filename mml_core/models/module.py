"""``MultiTaskModule``: trains a multi-task network (:mod:`~mml_core.models.network`, :mod:`~mml_core.models.smp`)
with Lightning; each task's metrics follow its type (:mod:`~mml_core.models.metrics`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric

from mml_core.config import instantiate
from mml_core.models.metrics import (
    bootstrapped_test_metrics,
    classwise_test_metrics,
    epoch_metrics,
    metric_inputs,
    test_metrics,
)
from mml_core.results.keys import metric_key, metric_prefix

PHASES = ("train", "val", "test")


class MultiTaskModule(pl.LightningModule):
    """Receives its network and each task's criterion; owns the loss weighting, metrics and optimizer.

    The loss is the weighted mean of the task losses (``task_weights``, default equal). Logged
    names are stable: ``{train,val,test}/<task>/<metric>``, ``<phase>/<task>/loss`` and the
    weighted ``<phase>/loss``. ``lr`` is an attribute so Lightning's LR finder can set it. The
    network has ``tasks`` (:class:`~mml_core.tasks.types.TaskSpec`), ``task_names`` and
    ``forward(x, task_index)``.
    """

    def __init__(
        self,
        network: nn.Module,
        criteria: Sequence[nn.Module],
        task_weights: Sequence[float] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        lr_scheduler: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        # the trainer factory logs the whole config as hyperparameters, these included
        self.save_hyperparameters(ignore=["network", "criteria"], logger=False)
        self.network = network
        self.criteria = nn.ModuleList(criteria)
        self.task_names = list(network.task_names)
        weights = list(task_weights) if task_weights else [1.0] * len(self.task_names)
        if len(weights) != len(self.task_names) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(
                f"task_weights {weights} must give one non-negative weight per task "
                f"({len(self.task_names)}: {self.task_names}) with a positive sum."
            )
        self.register_buffer("task_weights", torch.tensor(weights, dtype=torch.float32) / sum(weights))
        self.optimizer_cfg = dict(optimizer or {"_target_": "torch.optim.Adam", "lr": 1e-3})
        self.lr = float(self.optimizer_cfg.pop("lr", 1e-3))
        self.lr_scheduler_cfg = dict(lr_scheduler or {"_target_": None})
        self.tasks = list(network.tasks)
        self.metrics = nn.ModuleDict(
            {
                f"{phase}_{i}": (test_metrics(spec) if phase == "test" else epoch_metrics(spec)).clone(
                    prefix=metric_prefix(phase, spec.name)
                )
                for phase in PHASES
                for i, spec in enumerate(self.tasks)
            }
        )
        # per-class test metrics give several values each: computed and logged once, when testing ends
        self.classwise = nn.ModuleDict({f"test_{i}": classwise_test_metrics(spec) for i, spec in enumerate(self.tasks)})
        self._classwise_updated: set[str] = set()
        self.losses = nn.ModuleDict({f"{p}_{i}": MeanMetric() for p in PHASES for i in range(len(self.task_names))})
        self._train_logged: set[int] = set()  # heads whose train metrics are logged in this epoch
        self.bootstrap = nn.ModuleDict()
        self._bootstrapped: set[str] = set()

    def set_bootstrap(self, num_bootstraps: int) -> None:
        """Also report each test metric's mean and std over ``num_bootstraps`` resamples (0: off)."""
        self.bootstrap = nn.ModuleDict(
            {
                f"test_{i}": nn.ModuleDict(bootstrapped_test_metrics(spec, num_bootstraps))
                for i, spec in enumerate(self.tasks)
            }
            if num_bootstraps > 0
            else {}
        )

    def setup_redirection(self, head: str, task: str) -> None:
        """Evaluate ``task``'s data through ``head``'s classifier (MML's eval_on); logged names use ``task``."""
        i = self.task_names.index(head)
        self.task_names[i] = task
        for phase in PHASES:
            self.metrics[f"{phase}_{i}"] = self.metrics[f"{phase}_{i}"].clone(prefix=metric_prefix(phase, task))

    def forward(self, x: torch.Tensor, task_index: int = 0) -> torch.Tensor:
        return self.network(x, task_index)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        # The per-task loss and metrics are metric objects updated every batch; Lightning computes
        # and resets a logged metric object at the epoch's end, so logging it once per epoch gives the
        # same values as logging it every batch, without the ~0.3 ms each self.log call costs.
        total = 0.0
        for i, task in enumerate(self.task_names):
            if batch.get(task) is None:
                continue
            x, y, _ = batch[task]
            logits = self(x, i)
            loss = self.criteria[i](logits, y)
            total = total + self.task_weights[i] * loss
            metrics, mean_loss = self.metrics[f"train_{i}"], self.losses[f"train_{i}"]
            metrics.update(*metric_inputs(self.tasks[i].task_type, logits.detach(), y))
            mean_loss.update(loss.detach(), weight=len(y))
            if i not in self._train_logged:
                self._train_logged.add(i)
                self.log(metric_key("train", task, "loss"), mean_loss, on_step=False, on_epoch=True)
                self.log_dict(metrics, on_step=False, on_epoch=True)
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"The training loss is {total.detach().item()} at epoch {self.current_epoch + 1}, batch {batch_idx} "
                f"(tasks {self.task_names}). Lower optimizer.lr, set trainer.gradient_clip_val, or check the "
                "task's images and labels; checkpoints of earlier epochs are kept."
            )
        self.log("train/loss", total, prog_bar=True, on_step=True, on_epoch=True)
        return total

    def _eval_step(self, phase: str, batch: Any, dataloader_idx: int) -> None:
        x, y, _ = batch
        logits = self(x, dataloader_idx)
        loss = self.criteria[dataloader_idx](logits, y)
        task = self.task_names[dataloader_idx]
        self.losses[f"{phase}_{dataloader_idx}"].update(loss, weight=len(y))
        metrics = self.metrics[f"{phase}_{dataloader_idx}"]
        preds, target = metric_inputs(self.tasks[dataloader_idx].task_type, logits, y)
        metrics.update(preds, target)
        self.log_dict(metrics, on_step=False, on_epoch=True, add_dataloader_idx=False)
        key = f"{phase}_{dataloader_idx}"
        if phase == "test" and len(self.classwise[key]):
            self.classwise[key].update(preds, target)
            self._classwise_updated.add(key)
        if key in self.bootstrap:
            for booted in self.bootstrap[key].values():
                booted.update(preds, target)
            self._bootstrapped.add(key)
        self.log(metric_key(phase, task, "loss"), loss, on_epoch=True, batch_size=len(y), add_dataloader_idx=False)

    def _eval_epoch_end(self, phase: str) -> None:
        total = torch.zeros((), device=self.device)
        for i in range(len(self.task_names)):
            meter = self.losses[f"{phase}_{i}"]
            if meter.update_called:
                total = total + self.task_weights[i] * meter.compute()
            meter.reset()
        self.log(f"{phase}/loss", total, prog_bar=phase == "val")

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("val", batch, dataloader_idx)

    def on_train_epoch_start(self) -> None:
        # every epoch (also of a new fit, e.g. after Lightning's LR finder) logs the metric objects anew
        self._train_logged.clear()

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step("test", batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")
        for key, collection in self.classwise.items():
            task = self.task_names[int(key.split("_")[1])]
            if key in self._classwise_updated:  # ClasswiseWrapper does not count its updates
                for name, value in collection.compute().items():
                    self.log(metric_key("test", task, name), value)
            collection.reset()
        self._classwise_updated.clear()
        for key, booted in self.bootstrap.items():
            task = self.task_names[int(key.split("_")[1])]
            for name, metric in booted.items():
                if key in self._bootstrapped:  # BootStrapper does not count its updates
                    stats = metric.compute()
                    self.log(metric_key("test", task, f"{name}_boot_mean"), stats["mean"])
                    self.log(metric_key("test", task, f"{name}_boot_std"), stats["std"])
                metric.reset()
        self._bootstrapped.clear()

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        x, y, indices = batch
        return {"task": self.task_names[dataloader_idx], "logits": self(x, dataloader_idx), "targets": y,
                "indices": indices}

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.optimizer_cfg, self.parameters(), lr=self.lr)
        if not self.lr_scheduler_cfg.get("_target_"):
            return optimizer
        spec = dict(self.lr_scheduler_cfg)
        monitor = spec.pop("monitor", "val/loss")
        interval = spec.pop("interval", "epoch")
        scheduler = instantiate(spec, optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": monitor, "interval": interval},
        }
