"""Rules across config keys that the JSON schema cannot express, checked once while planning.

The schema checks each key on its own; these check trainer settings that would train forever or
not at all (every config) and combinations the train scheduler cannot run (or would run into
information leakage), each with a message that names the keys and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mml_core.config.loading import MisconfigurationError


def check_trainer(cfg: Mapping[str, Any]) -> None:
    """Trainer settings that would train forever or not at all (Lightning accepts both silently)."""
    trainer = cfg["trainer"]
    epochs, steps = trainer.get("max_epochs"), trainer.get("max_steps")
    fix = "Set trainer.max_epochs >= 1, e.g. --config 'trainer={max_epochs: 8}'"
    if epochs == 0:
        raise MisconfigurationError(f"trainer.max_epochs=0 trains nothing: no step would have a trained model. {fix}.")
    if steps == 0:
        raise MisconfigurationError(
            "trainer.max_steps=0 trains nothing: no step would have a trained model. Set trainer.max_steps >= 1, or "
            "-1 for no step limit."
        )
    if epochs == -1 and not trainer.get("max_time") and steps in (None, -1):
        raise MisconfigurationError(
            "trainer.max_epochs=-1 trains without end: Lightning then stops only at trainer.max_steps or "
            f"trainer.max_time, and neither is set. {fix}, or keep -1 and set trainer.max_time (e.g. \"00:12:00:00\") "
            "or trainer.max_steps."
        )
    if trainer.get("limit_train_batches") == 0:
        raise MisconfigurationError(
            "trainer.limit_train_batches=0 runs no training batch: the models would not train. Remove "
            "trainer.limit_train_batches (all batches), or set a fraction in (0, 1] or a number of batches >= 1."
        )


def check_leakage(cfg: Mapping[str, Any]) -> None:
    """MML's information-leakage checks: in cross-validation without nesting the validation fold is
    also the fold the CV estimate is computed on, so it must not steer training."""
    mode = cfg["mode"]
    if not mode["cv"] or mode["nested"]:
        return
    target = cfg["lr_scheduler"].get("_target_") or ""
    if "ReduceLROnPlateau" in target:
        raise MisconfigurationError(
            "lr_scheduler ReduceLROnPlateau reacts to the validation fold, which mode.cv=true also uses to "
            "estimate performance: information leaks from val into training. Set mode.nested=true (the "
            "estimate then comes from held-out folds), or use a schedule that ignores val "
            "(--config 'lr_scheduler={_target_: null}' or torch.optim.lr_scheduler.CosineAnnealingLR)."
        )
    for name, spec in cfg["cbs"].items():
        if "EarlyStopping" in spec.get("_target_", "") and "val" in str(spec.get("monitor", "")):
            raise MisconfigurationError(
                f"Callback cbs.{name} (EarlyStopping on '{spec.get('monitor')}') stops training by the validation "
                "fold, which mode.cv=true also uses to estimate performance: information leaks from val into "
                f"training. Set mode.nested=true, monitor a metric that does not depend on val (e.g. train/loss), "
                f"or remove cbs.{name}."
            )


def check_training(cfg: Mapping[str, Any]) -> None:
    """What the train scheduler needs: a pivot, stored weights for predict/test, a multitask count
    that means something, validation batches within the epochs trained, and no leakage (:func:`check_leakage`)."""
    mode = cfg["mode"]
    if not cfg["pivot"]["name"]:
        raise MisconfigurationError(
            "The train scheduler needs a pivot task: set pivot.name (e.g. --config 'pivot={name: sk_digits}')."
        )
    check_leakage(cfg)
    if not mode["store_parameters"] and {"predict", "test"} & set(mode["subroutines"]):
        raise MisconfigurationError(
            "mode.subroutines includes predict or test, which load the stored weights, but "
            "mode.store_parameters=false. Set mode.store_parameters=true or drop predict/test."
        )
    if mode["multitask"] == 1:
        raise MisconfigurationError(
            "mode.multitask is the TOTAL number of tasks trained jointly (pivot included): use 2 or more, or 0."
        )
    if cfg["loss"]["class_weights"] and cfg["loss"]["auto_activate_weighing"]:
        raise MisconfigurationError(
            "loss.class_weights gives class weights while loss.auto_activate_weighing=true would compute them "
            "(MML refuses both): set loss.auto_activate_weighing=false, or loss.class_weights=null."
        )
    if cfg["augmentations"]["gpu"]:
        raise MisconfigurationError(
            "augmentations.gpu (MML's kornia GPU augmentations) is not supported: move the transforms to "
            "augmentations.cpu (backend albumentations or torchvision) and set augmentations.gpu={}."
        )
    if cfg["trainer"].get("limit_val_batches") == 0:
        raise MisconfigurationError(
            "trainer.limit_val_batches=0 runs no validation batch, but the train scheduler records the validation "
            "loss of every fold (the monitored value, store_best, the learning curves). Remove "
            "trainer.limit_val_batches (all batches), or set a fraction in (0, 1] or a number of batches >= 1."
        )
    every, most = cfg["trainer"].get("check_val_every_n_epoch"), cfg["trainer"].get("max_epochs")
    if every and most and most > 0 and every > most:
        raise MisconfigurationError(
            f"trainer.check_val_every_n_epoch={every} exceeds trainer.max_epochs={most}: training would never "
            "validate, but the train scheduler monitors the validation loss. Lower check_val_every_n_epoch."
        )
