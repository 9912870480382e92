"""The exception of a training step stopped by a signal (torch-free, so the job runner can catch it cheaply)."""

from __future__ import annotations

import signal
from pathlib import Path


class TrainingInterrupted(RuntimeError):
    """Training stopped on a signal after saving a checkpoint; rerunning the step resumes from it."""

    def __init__(self, signum: int, checkpoint: Path):
        self.signum = signum
        self.checkpoint = checkpoint
        super().__init__(
            f"Stopped by {signal.Signals(signum).name}; checkpoint saved to {checkpoint}. "
            "Run the same snakemake command again to resume."
        )
