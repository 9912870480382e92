"""Training throughput on real image files: a training step as a job runs it against a plain PyTorch loop.

Data: 5,000 generated RGB PNGs of 128x128 px in 3 classes (class-dependent colour and stripes with
noise, ~40 KiB each: a real PNG decode; see bench_images.py), written once as an MML task and
reused from the data folder (--data, or --workdir/image-data) by later runs; not timed. Both sides
train on the same files, the training split of fold 0 (4,000 images), each shuffled its own way.

Side A, "factories (job)": the step as Snakemake runs it: `python -m mml_core.jobs.runner --config
<job config> --step train_fold--<task>_0 --threads 1` (threads as resources.train_fold.threads, 1
by default), i.e. TrainingScheduler.train_fold with create_datamodule, create_model and
create_trainer (default callbacks: checkpoints, progress bar, metrics tracker, resume callback; CSV
logger) and trainer.fit. The config: config/config.yaml plus arch.name=resnet18 (timm, from
scratch), preprocessing {id: size112, pipeline: [Resize 112x112]} applied on the fly (the task has
no size112 version), augmentations.cpu: albumentations HorizontalFlip p=0.5,
RandomBrightnessContrast p=0.5, Affine rotate +-10 deg p=0.5; normalization imagenet (default);
sampling.num_workers=2, enable_caching=false, batch_size=64; Adam lr 0.003 (default);
trainer.max_epochs=1, limit_train_batches=LAST, limit_val_batches=1 (train_fold needs a validation
loss; validation and the end-of-epoch checkpoint come after the window). deterministic=true and
the other trainer defaults stay as config.yaml sets them.

Side B, "plain loop": one hand-written script: timm.create_model('resnet18', num_classes=0) plus a
linear head, torch.optim.Adam(lr=0.003), cross-entropy (side A: MML's class-weighted one, weights
~1.0 as the classes are balanced); a torch Dataset that opens each PNG with PIL (convert RGB) and
applies one albumentations Compose of the same Resize, the same three augmentations, Normalize
(imagenet) and ToTensorV2; DataLoader(batch_size=64, shuffle=True, num_workers=2);
torch.set_num_threads(1) as the job runner does; no deterministic mode (it costs nothing here).

Timed: on both sides the same batch window, from the end of batch FIRST-1 to the end of batch
LAST-1 (default 4..19: 16 batches; see bench_window.py), so Python start-up, imports, building the
model and forking the DataLoader workers (and their first batches) are excluded; they are reported
separately as "start-up to the end of batch 1". Samples/s = window samples / window wall time; the
ratio by CPU time uses the CPU time of each training process and its DataLoader workers over the
window (less sensitive to other processes' load). Every measurement runs in a fresh process, the
sides alternating (A, B, A, B ...), so imports and worker pools never carry over.

    python benchmarks/image_throughput.py [--repeats 3] [--images 5000] [--window 4 20] [--quick]

--quick: 800 images (640 training), window 2..4 (3 batches), 2 repeats.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench_cli import parse, parser, workspace
from bench_images import AUGMENTATION, BATCH_SIZE, LR, NUM_WORKERS, PREPROCESSING, data_folder, image_task
from bench_images import job_config_file, task_config
from bench_processes import run
from bench_report import Figure, fmt_s, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

HERE = Path(__file__).resolve().parent
TARGET = 0.9
THREADS = 1  # resources.train_fold.threads in config/config.yaml: the runner's --threads


def child_env() -> dict[str, str]:
    """Both sides' environment: this one, with benchmarks/ importable (the timing callback)."""
    paths = [str(HERE), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


# -- side B: the plain loop (runs in its own process: image_throughput.py --plain-child SPEC) ------


def plain_child(spec_file: Path) -> int:
    """Train the plain loop over the batch window described in ``spec_file``; the Window writes the result."""
    import albumentations as A
    import numpy as np
    import timm
    import torch
    import torch.nn.functional as F
    from albumentations.pytorch import ToTensorV2
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from bench_window import Window

    spec = json.loads(Path(spec_file).read_text())
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    task_file = Path(spec["task_file"])
    desc = json.loads(task_file.read_text())
    val = set(desc["train_folds"][0])
    items = [
        (str(task_file.parent / sample["image"]), int(sample["class"]))
        for sample_id, sample in desc["train_samples"].items()
        if sample_id not in val
    ]
    transform = A.Compose(
        [getattr(A, e["name"])(**{k: v for k, v in e.items() if k != "name"}) for e in spec["preprocessing"]]
        + [getattr(A, e["name"])(**{k: v for k, v in e.items() if k != "name"}) for e in spec["augmentation"]]
        + [A.Normalize(), ToTensorV2()]
    )

    class PngDataset(Dataset):
        def __len__(self) -> int:
            return len(items)

        def __getitem__(self, i: int):
            path, label = items[i]
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"))
            return transform(image=array)["image"], label

    loader = DataLoader(
        PngDataset(), batch_size=spec["batch_size"], shuffle=True, num_workers=spec["workers"]
    )
    backbone = timm.create_model("resnet18", pretrained=False, num_classes=0)
    model = nn.Sequential(backbone, nn.Linear(backbone.num_features, len(desc["idx_to_class"])))
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    model.train()
    window = Window(spec["first"], spec["last"], spec["out"])
    for i, (x, y) in enumerate(loader):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.batch_end(i, len(y))
        if window.done:
            break
    if not window.done:
        raise RuntimeError(f"the epoch ended after {i + 1} batches, before the window (up to {spec['last']})")
    return 0


# -- the orchestrating process --------------------------------------------------------------------


def measure(args: argparse.Namespace, root: Path, data: Path, task: str, load: LoadLog) -> tuple[list, dict]:
    first, last = args.window
    rounds = itertools.count(1)
    results: dict[str, list[dict[str, Any]]] = {"factories": [], "plain": []}
    task_file = data / "RAW" / f"DSET_{task}" / f"TASK_{task}.json"

    def read(out: Path, what: str, output: str) -> dict[str, Any]:
        if not out.is_file():
            raise RuntimeError(f"{what} wrote no timing ({out}); its output ends with:\n{output[-3000:]}")
        return json.loads(out.read_text())

    def factories() -> float:
        n = next(rounds)
        out = root / f"factories-{n}.json"
        timer = {"_target_": "bench_window.batch_window_timer", "first": first, "last": last, "out": str(out)}
        overrides = task_config(f"factories-{n}", data, task, batches=last, callbacks={"window": timer})
        config, step = job_config_file(root / "configs" / f"factories-{n}.json", overrides)
        cmd = [sys.executable, "-m", "mml_core.jobs.runner", "--config", config, "--step", step,
               "--threads", str(THREADS)]  # fmt: skip
        done = run(cmd, root, env=child_env(), check=False)
        if done.returncode != 0:
            log = root / "results" / f"factories-{n}" / "logs" / f"{step}.log"
            tail = log.read_text()[-4000:] if log.is_file() else done.output[-4000:]
            raise RuntimeError(f"the training step failed (exit {done.returncode}); {log} ends with:\n{tail}")
        result = read(out, "the training step", done.output)
        results["factories"].append(result)
        return result["samples"] / result["wall"]

    def plain() -> float:
        n = next(rounds)
        out = root / f"plain-{n}.json"
        spec = {
            "task_file": str(task_file), "first": first, "last": last, "out": str(out), "threads": THREADS,
            "seed": 42, "lr": LR, "batch_size": BATCH_SIZE, "workers": NUM_WORKERS,
            "preprocessing": PREPROCESSING["pipeline"], "augmentation": AUGMENTATION["pipeline"],
        }  # fmt: skip
        spec_file = root / "configs" / f"plain-{n}.json"
        spec_file.parent.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(json.dumps(spec))
        done = run([sys.executable, str(Path(__file__).resolve()), "--plain-child", str(spec_file)], root,
                   env=child_env(), check=True)  # fmt: skip
        result = read(out, "the plain loop", done.output)
        results["plain"].append(result)
        return result["samples"] / result["wall"]

    values = alternate({"factories (job)": factories, "plain loop": plain}, args.repeats, load)
    a, b = values["factories (job)"], values["plain loop"]
    ratio = median(paired_ratios(a, b))

    def per(side: str, key: str) -> list[float]:
        return [r["samples"] / r[key] for r in results[side]]

    cpu_ratio = median(paired_ratios(per("factories", "cpu_tree"), per("plain", "cpu_tree")))
    main_ratio = median(paired_ratios(per("factories", "cpu_main"), per("plain", "cpu_main")))

    def ms_per_batch(side: str, key: str) -> float:
        return median([1000 * r[key] / r["batches"] for r in results[side]])

    startup = {side: median([r["first_batch_s"] for r in results[side]]) for side in results}
    threads = sorted({r["threads"] for side in results for r in results[side]})
    figures = [
        Figure(
            "image throughput: factories (job) / plain loop",
            f">= {TARGET}x",
            f"{ratio:.3f}x",
            ratio >= TARGET,
            ratio,
        ),
        Figure(
            "  samples/s: factories, plain loop", "-", f"{median(a):.1f}, {median(b):.1f}", None, median(a)
        ),
        Figure(
            "  same ratio by CPU time (process + DataLoader workers)",
            "-",
            f"{cpu_ratio:.3f}x (training process alone: {main_ratio:.3f}x)",
            None,
            cpu_ratio,
        ),
        Figure(
            "  CPU per batch, process + workers: factories, plain loop",
            "-",
            f"{ms_per_batch('factories', 'cpu_tree'):.0f} ms, {ms_per_batch('plain', 'cpu_tree'):.0f} ms "
            f"(process alone {ms_per_batch('factories', 'cpu_main'):.0f} ms, "
            f"{ms_per_batch('plain', 'cpu_main'):.0f} ms)",
            None,
            ms_per_batch("factories", "cpu_tree"),
        ),
        Figure(
            "  start-up to the end of batch 1 (not timed): factories, plain loop",
            "-",
            f"{fmt_s(startup['factories'])}, {fmt_s(startup['plain'])}",
            None,
            startup["factories"],
        ),
        Figure(
            "  window",
            "-",
            f"batches {first}..{last - 1} ({last - first} x {BATCH_SIZE}), torch threads {threads}, "
            f"{NUM_WORKERS} workers",
            None,
        ),
    ]
    for name, v in values.items():
        logger.info("%-18s %s samples/s", name, spread(v))
    return figures, {"samples_per_s": values, "runs": results}


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=3, quick_repeats=2)
    p.add_argument("--images", type=int, default=None, help="generated images (default 5000, --quick 800)")
    p.add_argument(
        "--window",
        type=int,
        nargs=2,
        metavar=("FIRST", "LAST"),
        default=None,
        help="timed batches FIRST..LAST-1 (default 4 20, --quick 2 5)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of the generated tasks, kept and reused (default: --workdir/image-data, else temporary)",
    )
    p.add_argument("--plain-child", type=Path, default=None, help=argparse.SUPPRESS)  # side B's own process
    args = parse(p, argv)
    if args.plain_child is not None:
        return plain_child(args.plain_child)
    args.images = args.images or (800 if args.quick else 5000)
    args.window = tuple(args.window or ((2, 5) if args.quick else (4, 20)))
    train_batches = (args.images - args.images // 5) // BATCH_SIZE  # fold 0 is the validation split
    if not 1 <= args.window[0] < args.window[1] <= train_batches:
        p.error(
            f"--window must satisfy 1 <= FIRST < LAST <= {train_batches} (full batches of {args.images} images)"
        )
    started = time.time()
    load = LoadLog()
    with workspace(args, "image_throughput") as root:
        data = data_folder(args, root)
        task = image_task(data, args.images)
        figures, details = measure(args, root, data, task, load)
    details.update(images=args.images, window=list(args.window), task=task)
    report("training throughput on image files", figures, details, args.json, started, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
