"""Job side: run one step of the schedule in this process and record its ``metrics.json``.

Snakemake starts one process per step: ``python -m mml_core.jobs.runner --config <file> --step
<name>`` (a shell rule: Snakemake's ``script:`` rules cost ~1.2 ms more per job while planning and
import Snakemake in every job). The config file is the validated config planning wrote (see
:mod:`mml_core.schedulers.plan`); the job trusts it as it is, rebuilds the scheduler from it, finds
its step by name, seeds, and calls ``command(*params)``. Everything the step prints (Lightning's
progress bar included) goes to the step's log file.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mml_core.jobs.gpus import claim_gpus
from mml_core.jobs.logs import job_log
from mml_core.schedulers import provenance
from mml_core.schedulers.base import AbstractBaseScheduler
from mml_core.schedulers.registry import scheduler_class
from mml_core.schedulers.steps import StepLayout
from mml_core.training.interrupted import TrainingInterrupted

logger = logging.getLogger(__name__)

# steps that never touch torch; they skip the ~5 s torch import that seeding would cost
_TORCH_FREE = ("prepare_exp", "finish_exp")


def seed_everything(seed: int, with_torch: bool) -> None:
    """Seed python and numpy; torch and dataloader workers too when the step uses torch.

    The same as Lightning's ``seed_everything(seed, workers=True)``, whose environment variables
    make a Trainer seed its DataLoader workers, without importing Lightning Fabric (and with it
    torchmetrics): ~2 s that steps which do not train (prediction) need not pay.
    """
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    if with_torch:
        import torch

        os.environ["PL_GLOBAL_SEED"] = str(seed)
        os.environ["PL_SEED_WORKERS"] = "1"
        torch.manual_seed(seed)


def read_job_config(config_file: Path) -> DictConfig:
    """The validated config that planning wrote to ``config_file``, taken as it is."""
    with open(config_file) as fh:
        return OmegaConf.create(json.load(fh))


def build_from(cfg: DictConfig) -> AbstractBaseScheduler:
    """The scheduler that ``cfg`` (validated while planning) names."""
    return scheduler_class(cfg.mode.scheduler)(cfg)


def run_step(config_file: Path, step: str, threads: int = 1, gpus: int = 0) -> dict[str, Any]:
    """Run step ``step`` of the schedule in ``config_file``; write its metrics.json last.

    The metrics file is written atomically only after the command returned, so its existence
    means the step finished. With ``gpus > 0`` the step first claims devices no other job uses
    (``CUDA_VISIBLE_DEVICES``, see :mod:`mml_core.jobs.gpus`). Returns the record written.
    """
    started = time.time()
    cfg = read_job_config(config_file)
    log = StepLayout.of(cfg.proj).log(step)
    with job_log(log) as console, contextlib.ExitStack() as held:
        try:
            devices = held.enter_context(claim_gpus(gpus))
            scheduler = build_from(cfg)
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
        files = {str(f.relative_to(scheduler.results_dir)): f.stat().st_size for f in scheduler.step_files(ix)}
        inputs = [scheduler.step_names[i] for i in scheduler.reads_steps(ix)]
        record = provenance.write_record(
            scheduler.layout.metrics(step), scheduler.step_identity(ix), scheduler.step_results, config_file,
            started, threads, devices, files, inputs,
        )  # fmt: skip
        logger.info("Step %s finished in %.1f s.", step, record["provenance"]["wall_time_s"])
    return record


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of one Snakemake job; the traceback goes to the step's log."""
    parser = argparse.ArgumentParser(prog="python -m mml_core.jobs.runner", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="the config file planning wrote")
    parser.add_argument("--step", required=True, help="step name, e.g. train_fold--sk_digits_0")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs to claim (resources.<command>.gpu)")
    args = parser.parse_args(argv)
    try:
        run_step(args.config, args.step, args.threads, args.gpus)
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
