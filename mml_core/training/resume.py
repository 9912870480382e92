"""Resumable training: exact resumption, graceful stop on signals, safe checkpoint files.

A resumed training step must end with the same weights as an uninterrupted one. Three pieces:

- :class:`~mml_core.data.sampler.EpochShuffleSampler` draws each epoch's order from ``seed + epoch`` and can skip the
  batches a checkpoint already covered, so data order never depends on process history;
- :class:`ResumeCallback` reseeds torch, numpy and python before every training batch from
  ``(seed, epoch, batch)`` (dropout and other randomness become a function of the position in
  training), records the position in each checkpoint, tells the samplers where to continue, and
  turns SIGINT/SIGTERM into a checkpoint at the next batch boundary followed by
  :class:`TrainingInterrupted` (a non-zero exit, so Snakemake and SLURM retry);
- :class:`AtomicCheckpointIO` writes checkpoints beside their target and renames them into place;
  :func:`find_resume_checkpoint` skips corrupt files and says which one it used.

Checkpoints are data, never code: they are read with :func:`~mml_core.training.safe_load.load_checkpoint`
(``weights_only=True``), and a file it refuses is treated like a corrupt one: moved aside, with a message.

Lightning restores model, optimizer, LR-scheduler and loop counters from the checkpoint itself;
the epoch-level train metrics of an epoch interrupted mid-way are averaged over its remaining
batches only (Lightning does not checkpoint its running means); validation and test metrics and
the weights are exact.
"""

from __future__ import annotations

import logging
import random
import signal
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO

from mml_core.data.sampler import EpochShuffleSampler
from mml_core.data.seeding import position_seed
from mml_core.io import atomic_write
from mml_core.training.interrupted import TrainingInterrupted
from mml_core.training.safe_load import load_checkpoint, load_problem

logger = logging.getLogger(__name__)

# Lightning warns that a mid-epoch checkpoint cannot resume a plain dataloader reliably; the
# EpochShuffleSampler and ResumeCallback below do resume it exactly.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
# the checkpoint folder holds the step's claim (step.json) before the first checkpoint: not a mistake
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")

INTERRUPTED = "interrupted.ckpt"
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def seed_position(seed: int, epoch: int, batch: int) -> None:
    """Seed torch (CPU and every initialized accelerator), numpy and python for one training position.

    Called before every batch, so it avoids ``torch.manual_seed``: on a machine without an
    initialized GPU that queues a lazy CUDA seeding with a formatted stack trace on each call
    (about 0.3 ms per batch here). A device used for training is initialized before the first batch.
    """
    value = position_seed(seed, epoch, batch)
    torch.default_generator.manual_seed(value)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(value)
    if torch.backends.mps.is_available():
        torch.mps.manual_seed(value)
    if hasattr(torch, "xpu") and torch.xpu.is_initialized():
        torch.xpu.manual_seed_all(value)
    np.random.seed(value % 2**32)
    random.seed(value)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints are written to a temp file in the same folder, fsynced, then renamed.

    A kill during the write leaves the previous checkpoint intact (Lightning's own writer stages
    in the system temp folder and may copy across file systems).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        atomic_write(Path(path), lambda tmp: torch.save(checkpoint, tmp))


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` cannot be resumed from (unreadable, truncated, unsafe, not a training checkpoint), or None."""
    try:
        # a truncated file fails because its zip directory (at the end) is gone
        state = load_checkpoint(path, mmap=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        return load_problem(exc)
    if not isinstance(state, dict) or not {"state_dict", "loops", "epoch"} <= set(state):
        return "is not a Lightning training checkpoint"
    return None


def checkpoint_mismatch(model: torch.nn.Module, path: Path) -> str | None:
    """How the weights in checkpoint ``path`` differ from ``model``'s (missing, unexpected, reshaped)."""
    saved = load_checkpoint(path, mmap=True)["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    reshaped = sorted(k for k in set(own) & set(saved) if tuple(own[k].shape) != tuple(saved[k].shape))
    problems = []
    if missing:
        problems.append(f"missing {missing[:3]}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:3]}")
    if reshaped:
        problems.append(f"other shapes for {reshaped[:3]}")
    return "; ".join(problems) or None


def find_resume_checkpoint(directory: Path, candidates: tuple[str, ...]) -> Path | None:
    """The newest usable checkpoint among ``candidates`` in ``directory``.

    Corrupt files are renamed to ``<name>.corrupt`` (kept for inspection, never deleted) and the
    next newest is tried; every decision is logged so the job log says what was resumed.
    """
    directory = Path(directory)
    files = sorted(
        (directory / name for name in candidates if (directory / name).is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for path in files:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        logger.warning("Checkpoint %s %s; moved it to %s and trying the previous one.", path, problem, aside.name)
    if files:
        logger.warning("No usable checkpoint in %s: the step restarts from the beginning.", directory)
    return None


class ResumeCallback(pl.Callback):
    """Exact resumption and graceful stop; see the module docstring."""

    def __init__(self, seed: int, checkpoint_dir: Path):
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir)
        self._trainer: pl.Trainer | None = None
        self._pending: dict[str, int] | None = None
        self._requested: int | None = None
        self._previous: dict[int, Any] = {}

    # -- position bookkeeping ------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        if trainer is None:
            return {}
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        return {"epoch": trainer.current_epoch, "batches_done": progress.processed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict) if state_dict else None

    @staticmethod
    def _loaders(trainer: pl.Trainer) -> list[Any]:
        loader = trainer.fit_loop._combined_loader
        return [dl for dl in (loader.flattened if loader is not None else [])
                if isinstance(getattr(dl, "sampler", None), EpochShuffleSampler)]

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pending, self._pending = self._pending, None
        if pending:
            logger.info("Training continues at epoch %d of %d.", trainer.current_epoch + 1, trainer.max_epochs)
        if not pending or pending.get("batches_done", 0) <= 0:
            return
        if pending["batches_done"] >= trainer.num_training_batches:
            return  # saved at the end of an epoch: the next epoch starts fresh
        for dl in self._loaders(trainer):
            # shorter task loaders cycle within an epoch (max_size_cycle): continue mid-cycle
            done = pending["batches_done"] % max(len(dl), 1)
            dl.sampler.set_epoch(pending["epoch"])
            dl.sampler.resume_at(pending["epoch"], done * (dl.batch_size or 1))
        # Lightning made the data iterator before this hook; with DataLoader worker processes it has
        # already drawn indices from the samplers, so it is made again now that they know where to go on
        iter(trainer.fit_loop._data_fetcher)
        logger.info("Resuming epoch %d after batch %d.", pending["epoch"] + 1, pending["batches_done"])

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        seed_position(self.seed, trainer.current_epoch, batch_idx)

    # -- graceful stop ---------------------------------------------------------------------------

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self._requested is None:
            logger.warning("Received %s: saving a checkpoint at the next batch boundary.", signal.Signals(signum).name)
        self._requested = signum

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._requested = None
        for signum in _STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._request_stop)

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_handlers()
        # the step finished: a stop checkpoint of an earlier attempt is obsolete
        (self.checkpoint_dir / INTERRUPTED).unlink(missing_ok=True)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore_handlers()

    def _stop_if_requested(self, trainer: pl.Trainer) -> None:
        if self._requested is None:
            return
        path = self.checkpoint_dir / INTERRUPTED
        trainer.save_checkpoint(path)
        logger.warning("Checkpoint at epoch %d saved to %s; stopping.", trainer.current_epoch + 1, path)
        raise TrainingInterrupted(self._requested, path)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # after the last batch of an epoch, let validation finish and stop at the epoch's end
        if batch_idx + 1 < trainer.num_training_batches:
            self._stop_if_requested(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_if_requested(trainer)
