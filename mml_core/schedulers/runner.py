"""Job side: run one step of the schedule in this process and record its ``metrics.json``.

Snakemake starts one process per step: ``python -m mml_core.schedulers.runner --step ...``
(a shell rule: Snakemake's ``script:`` rules cost ~1.2 ms more per job while planning and import
Snakemake in every job). The job rebuilds the scheduler from the same config, finds its step by
name, seeds, and calls ``command(*params)``. Everything the step prints (Lightning's progress bar
included) goes to the step's log file.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import platform
import random
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from mml_core.config import config_hash
from mml_core.io import atomic_write_json
from mml_core.schedulers.gpus import claim_gpus
from mml_core.schedulers.registry import build_scheduler
from mml_core.training.interrupted import TrainingInterrupted

logger = logging.getLogger(__name__)

# steps that never touch torch; they skip the ~5 s torch import that seeding would cost
_TORCH_FREE = ("prepare_exp", "finish_exp")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_log(path: Path) -> Iterator[TextIO]:
    """Send logging, stdout and stderr (file descriptors too) to ``path``; yield the console's stderr."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    console = os.fdopen(os.dup(2), "w", buffering=1)
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as log:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield console
        finally:
            root.removeHandler(handler)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            console.close()


def seed_everything(seed: int, with_torch: bool) -> None:
    """Seed python and numpy; torch and dataloader workers too when the step uses torch."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    if with_torch:
        from lightning_fabric.utilities.seed import seed_everything as fabric_seed

        fabric_seed(seed, workers=True, verbose=False)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("mml_core", "torch", "pytorch-lightning", "torchmetrics", "snakemake"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    return versions


def run_step(
    config: Mapping[str, Any], step: str, output: Path, log: Path, threads: int = 1, gpus: int = 0
) -> dict[str, Any]:
    """Run step ``step`` of the schedule that ``config`` defines; write ``output`` (metrics.json) last.

    The metrics file is written atomically only after the command returned, so its existence
    means the step finished. With ``gpus > 0`` the step first claims devices no other job uses
    (``CUDA_VISIBLE_DEVICES``, see :mod:`mml_core.schedulers.gpus`). Returns the record written.
    """
    started = time.time()
    with job_log(log) as console, contextlib.ExitStack() as held:
        try:
            devices = held.enter_context(claim_gpus(gpus))
            scheduler = build_scheduler(config)
            ix = scheduler.step_index(step)
            command = scheduler.commands[ix]
            scheduler.set_active_naming(ix)
            uses_torch = command.__name__ not in _TORCH_FREE
            seed_everything(scheduler.cfg.seed, with_torch=uses_torch)
            if uses_torch:
                import torch

                torch.set_num_threads(max(1, threads))
            logger.info("Step %s (%d/%d): %s", step, ix + 1, len(scheduler.commands), scheduler.schedule_entry(ix))
            if command.__name__ != "prepare_exp":
                scheduler.after_preparation_hook()
            command(*scheduler.params[ix])
        except BaseException as exc:
            logger.exception("Step %s failed.", step)
            console.write(f"mml_core: step {step} failed: {type(exc).__name__}: {exc}\n  (full log: {log})\n")
            raise
        record = {
            "step": step,
            "command": command.__name__,
            "params": scheduler.params[ix],
            "entry": scheduler.schedule_entry(ix),
            "config_hash": config_hash(scheduler.command_config(command.__name__)),
            "results": scheduler.step_results,
            "provenance": {
                "started": datetime.fromtimestamp(started, timezone.utc).isoformat(),
                "wall_time_s": round(time.time() - started, 3),
                "host": socket.gethostname(),
                "threads": threads,
                "gpus": devices,
                "versions": _versions(),
            },
        }
        atomic_write_json(Path(output), record)
        logger.info("Step %s finished in %.1f s.", step, record["provenance"]["wall_time_s"])
    return record


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of one Snakemake job; the traceback goes to the step's log."""
    parser = argparse.ArgumentParser(prog="python -m mml_core.schedulers.runner", description=__doc__)
    parser.add_argument("--step", required=True, help="step name, e.g. train_fold--sk_digits_0")
    parser.add_argument("--output", required=True, type=Path, help="the step's metrics.json")
    parser.add_argument("--log", required=True, type=Path, help="the step's log file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs to claim (resources.<command>.gpu)")
    parser.add_argument("--config-json", required=True, help="the experiment config as JSON")
    args = parser.parse_args(argv)
    try:
        run_step(json.loads(args.config_json), args.step, args.output, args.log, args.threads, args.gpus)
    except TrainingInterrupted as exc:
        return 128 + exc.signum  # the shell's convention for "stopped by signal N"
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    # The job is done and its files are closed. Without this, the interpreter's last garbage
    # collections walk every object torch and Lightning created: ~0.85 s per job here (measured
    # against `import torch, pytorch_lightning` alone). Frozen objects are skipped; atexit handlers
    # and module teardown still run as usual.
    gc.freeze()
    sys.exit(code)
