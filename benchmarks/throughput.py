"""Training throughput: samples/s of a training step built by the factories against a plain PyTorch loop.

The Lightning side is built exactly as `TrainingScheduler.train_fold` builds it: a
TrainingScheduler from the default config, `create_datamodule`, `create_model`,
`create_trainer(metrics_callback=True)` (default callbacks: checkpoints, progress bar, metrics
tracker, resume callback; the CSV logger), `trainer.fit`, inside the job's log redirection. A
timing callback appended last measures each epoch's training window: from on_train_epoch_start
to the last on_train_batch_end (data fetching, forward, loss, backward, optimizer step, and every
callback's and logger's per-batch work; not validation or the end-of-epoch checkpoint).

The plain side trains a model from the same factory with the same initial weights, the same
optimizer (the module's configure_optimizers), batch size and in-memory tensors (the cached
images of the datamodule's train split), shuffled per epoch: forward, cross-entropy, backward,
step. A third side adds the module's torchmetrics updates to the plain loop, to show what they
cost. torch runs on 1 thread everywhere. Epoch 1 is warm-up; samples/s come from epochs 2..N.

    python benchmarks/throughput.py [--repeats 5] [--epochs 6] [--tasks sk_digits synthetic16] [--ablate] [--quick]

sk_digits is the default experiment's task (8x8 images, ~1,150 training samples per fold):
per-batch overhead weighs most there. synthetic16 is a generated 16x16 RGB task (2,500 images,
written once as PNG and decoded once into memory) where a batch costs about twice the compute.
Samples/s are also computed from the process's CPU time (torch on 1 thread, no workers: the
training runs on this process's one thread), which other processes' load barely moves.
--ablate adds Lightning runs without one per-batch extra each (see ABLATIONS) to attribute the
gap: the train metrics, Lightning's self.log, the progress bar, all three; and Lightning's own
floor (a bare Trainer and a minimal module).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import os
import sys
import time
from pathlib import Path

from bench_cli import parse, parser, workspace
from bench_fixtures import demo_data
from bench_report import Figure, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

TARGET = 0.95


def epoch_timer():
    """A callback timing each epoch's training batches (defined here: Lightning is imported late)."""
    import pytorch_lightning as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.epochs: list[Epoch] = []
            self._start = self._last = (0.0, 0.0)
            self._samples = 0

        def on_train_epoch_start(self, trainer, pl_module):
            self._samples = 0
            self._start = self._last = clocks()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self._last = clocks()
            self._samples += sum(len(part[1]) for part in batch.values() if part is not None)

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs.append(
                Epoch(self._last[0] - self._start[0], self._last[1] - self._start[1], self._samples)
            )

    return EpochTimer()


@dataclasses.dataclass
class Epoch:
    wall: float
    cpu: float  # CPU time of this process: robust against other processes taking the cores
    samples: int


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def synthetic_task(
    data_dir: Path, name: str = "synthetic16", n: int = 2500, size: int = 16, classes: int = 10
) -> str:
    """A learnable random RGB task imported through the npz importer (written once, not timed)."""
    import numpy as np

    from mml_core.tasks.importers import import_npz

    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, size=n)
    prototypes = rng.integers(0, 256, size=(classes, size, size, 3))
    noise = rng.normal(0, 60, size=(n, size, size, 3))
    images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
    test = n // 5
    path = data_dir / f"{name}.npz"
    np.savez(
        path,
        train_images=images[test:],
        train_labels=labels[test:],
        val_images=images[:0],
        val_labels=labels[:0],
        test_images=images[:test],
        test_labels=labels[:test],
    )
    import_npz(path, data_dir, name, overwrite=True)
    return name


def rate(epochs: list[Epoch], clock: str = "wall") -> float:
    """Samples/s over epochs 2..N (the first is warm-up), by wall or CPU time."""
    timed = epochs[1:] or epochs
    return sum(e.samples for e in timed) / sum(getattr(e, clock) for e in timed)


# --ablate: the factories' step without one of its per-batch extras (all else equal)
ABLATIONS = {
    "no train metrics": {"metrics"},  # no torchmetrics update and log_dict per training batch
    "no self.log": {"log"},  # LightningModule.log/log_dict are no-ops
    "no progress bar": {"pbar"},  # trainer.enable_progress_bar: false
    "all three": {"metrics", "log", "pbar"},
    # Lightning's own floor: a minimal LightningModule (forward, loss) around the same model, a
    # pl.Trainer without logger, checkpoints, progress bar or callbacks; the same datamodule
    "lightning floor": set(),
}


def lightning_floor(model, epochs: int):
    """A bare pl.Trainer and a minimal LightningModule training ``model``'s weights the same way."""
    import pytorch_lightning as pl
    import torch.nn.functional as F

    class Minimal(pl.LightningModule):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def training_step(self, batch, batch_idx):
            x, y, _ = next(part for part in batch.values() if part is not None)
            return F.cross_entropy(self.inner(x, 0), y)

        def configure_optimizers(self):
            return self.inner.configure_optimizers()

    # deterministic as in the default config (it stays set process-wide once a trainer set it anyway)
    bare = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    return bare, Minimal(model)


def ablate(features: set[str], model) -> None:
    """Apply the ablation ``features`` (see ABLATIONS) to ``model`` (a fresh one per measurement)."""
    if "metrics" in features:
        from torchmetrics import MetricCollection

        for key in list(model.metrics.keys()):
            if key.startswith("train_"):
                model.metrics[key] = MetricCollection({})
    if "log" in features:
        model.log = lambda *args, **kwargs: None
        model.log_dict = lambda *args, **kwargs: None


def measure(args, root: Path, data: Path, task: str, epochs: int, load: LoadLog) -> tuple[list, dict]:
    """Alternating rounds for one task: the figures and the raw samples/s (the load meanwhile into
    ``load``)."""
    import torch
    import torch.nn.functional as F
    from lightning_fabric.utilities.seed import seed_everything

    from mml_core.config import load_config
    from mml_core.jobs.logs import job_log
    from mml_core.schedulers import TrainingScheduler
    from mml_core.schedulers.base import step_name

    rounds = itertools.count(1)
    shared: dict = {}
    cpu_rates: dict[str, list[float]] = {}

    def build(progress_bar: bool = True):
        """Scheduler, datamodule, model and trainer exactly as train_fold builds them."""
        trainer_cfg = {"max_epochs": epochs, **({} if progress_bar else {"enable_progress_bar": False})}
        cfg = load_config(
            {
                "proj": f"{task}-{next(rounds)}",
                "data_dir": str(data),
                "task_list": [task],
                "pivot": {"name": task},
                "mode": {"cv": False, "subroutines": ["train"]},
                "trainer": trainer_cfg,
            }
        )
        seed_everything(cfg.seed, workers=True, verbose=False)
        scheduler = TrainingScheduler(cfg)
        scheduler.set_active_naming(scheduler.step_index(step_name("train_fold", [task, 0])))
        struct = scheduler.get_struct(task)
        datamodule = scheduler.create_datamodule([struct], fold=0)
        model = scheduler.create_model([struct])
        trainer = scheduler.create_trainer(metrics_callback=True)
        return scheduler, struct, datamodule, model, trainer

    def lightning(ablation: str | None = None) -> float:
        features = ABLATIONS.get(ablation, set())
        scheduler, struct, datamodule, model, trainer = build(progress_bar="pbar" not in features)
        shared.setdefault("initial", copy.deepcopy(model.state_dict()))
        model.load_state_dict(shared["initial"])
        timer = epoch_timer()
        if ablation == "lightning floor":
            trainer, model = lightning_floor(model, epochs)
        trainer.callbacks.append(timer)  # last: its window includes every other callback's work
        ablate(features, model)
        with job_log(root / "logs" / f"{scheduler.active_step_naming}.log"):
            trainer.fit(model=model, datamodule=datamodule)
        if "data" not in shared:
            train = datamodule.datasets[task]["train"]
            if train.images is None:
                raise RuntimeError("the training split is not cached in memory (sampling.enable_caching)")
            shared["data"] = (train.images, train.targets)
            shared["batch_size"] = datamodule.batch_size
            shared["build"] = lambda: scheduler.create_model([struct])
            shared["seed"] = scheduler.cfg.seed
        cpu_rates.setdefault(ablation or "lightning", []).append(rate(timer.epochs, "cpu"))
        return rate(timer.epochs)

    def plain(with_metrics: bool) -> float:
        images, targets = shared["data"]
        model = shared["build"]()
        model.load_state_dict(shared["initial"])
        optimizer = model.configure_optimizers()
        optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
        metrics = model.metrics["train_0"] if with_metrics else None
        bs, n = shared["batch_size"], len(targets)
        model.train()
        measured = []
        for epoch in range(epochs):
            start = clocks()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(shared["seed"] + epoch))
            for first in range(0, n, bs):
                idx = order[first : first + bs]
                x, y = images[idx], targets[idx]
                logits = model(x, 0)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if metrics is not None:
                    metrics.update(logits.detach(), y)
            if metrics is not None:
                metrics.compute()
                metrics.reset()
            end = clocks()
            measured.append(Epoch(end[0] - start[0], end[1] - start[1], n))
        cpu_rates.setdefault("plain+metrics" if with_metrics else "plain", []).append(rate(measured, "cpu"))
        return rate(measured)

    logger.info("%s: warm-up round (imports, decoding the images once), not counted", task)
    lightning()
    cpu_rates.clear()
    sides = {
        "lightning (factories)": lightning,
        "plain loop": lambda: plain(False),
        "plain loop + metrics": lambda: plain(True),
    }
    if args.ablate:
        sides.update({f"lightning, {a}": (lambda a=a: lightning(a)) for a in ABLATIONS})
    values = alternate(sides, args.repeats, load)
    pl_rate, plain_rate = values["lightning (factories)"], values["plain loop"]
    ratio = median(paired_ratios(pl_rate, plain_rate))
    cpu_ratio = median(paired_ratios(cpu_rates["lightning"], cpu_rates["plain"]))
    bs = shared["batch_size"]
    overhead_ms = median(
        [(1 / a - 1 / b) * bs * 1000 for a, b in zip(cpu_rates["lightning"], cpu_rates["plain"])]
    )
    figures = [
        Figure(
            f"throughput: factories / plain loop ({task})",
            f">= {TARGET}x",
            f"{ratio:.3f}x",
            ratio >= TARGET,
            ratio,
        ),
        Figure(
            "  samples/s: factories, plain loop",
            "-",
            f"{median(pl_rate):.0f}, {median(plain_rate):.0f}",
            None,
            median(pl_rate),
        ),
        Figure("  same ratio by CPU time (robust to load)", "-", f"{cpu_ratio:.3f}x", None, cpu_ratio),
        Figure(
            "  per-batch overhead (CPU time)",
            "-",
            f"{overhead_ms:.1f} ms/batch (batch {bs}, {len(shared['data'][1])} samples/epoch)",
            None,
            overhead_ms,
        ),
        Figure(
            "  plain loop + train metrics / plain loop",
            "-",
            f"{median(paired_ratios(cpu_rates['plain+metrics'], cpu_rates['plain'])):.3f}x (CPU time)",
            None,
            median(paired_ratios(cpu_rates["plain+metrics"], cpu_rates["plain"])),
        ),
    ]
    for a in ABLATIONS if args.ablate else ():
        r_cpu = median(paired_ratios(cpu_rates[a], cpu_rates["plain"]))
        r_wall = median(paired_ratios(values[f"lightning, {a}"], plain_rate))
        figures.append(
            Figure(
                f"  ablation: factories, {a} / plain loop",
                "-",
                f"{r_cpu:.3f}x CPU ({r_wall:.3f}x wall)",
                None,
                r_cpu,
            )
        )
    values = {**values, **{f"cpu: {k}": v for k, v in cpu_rates.items()}}
    for name, v in values.items():
        logger.info("%s %-36s %s samples/s", task, name, spread(v))
    return figures, values


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=5, quick_repeats=2)
    p.add_argument("--epochs", type=int, default=None, help="epochs per measurement (default 6, --quick 3)")
    p.add_argument(
        "--tasks",
        nargs="+",
        choices=("sk_digits", "synthetic16"),
        default=None,
        help="default: sk_digits synthetic16 (--quick: sk_digits)",
    )
    p.add_argument(
        "--ablate",
        action="store_true",
        help="also time the factories' step without our per-batch extras (see ABLATIONS)",
    )
    args = parse(p, argv)
    for noisy in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "mml_core.schedulers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # start-up chatter of every fit
    epochs = args.epochs or (3 if args.quick else 6)
    tasks = args.tasks or (["sk_digits"] if args.quick else ["sk_digits", "synthetic16"])
    started = time.time()
    load = LoadLog()  # cores other processes used during each measurement

    import torch

    torch.set_num_threads(1)
    figures, details = [], {"epochs": epochs}
    with workspace(args, "throughput") as root:
        data = demo_data(root / "data")
        cwd = os.getcwd()
        os.chdir(root)  # results/ (checkpoints, logs) of the Lightning runs land here
        try:
            for task in tasks:
                if task == "synthetic16":
                    synthetic_task(data)
                task_figures, values = measure(args, root, data, task, epochs, load)
                figures += task_figures
                details[task] = values
        finally:
            os.chdir(cwd)
    report("training throughput", figures, details, args.json, started, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
