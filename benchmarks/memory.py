"""Peak memory of a training step on image files: 1x against 2x the number of images, caching off.

Data: the generated 128x128 px PNG tasks of bench_images.py, 5,000 and 10,000 images (the first
5,000 the same images; written once, reused from --data or --workdir/image-data; not timed).

Each measurement is one real training step as Snakemake runs it, in a fresh process:
`python -m mml_core.jobs.runner --config <job config> --step train_fold--<task>_0 --threads 1`
(TrainingScheduler.train_fold: create_datamodule, create_model, create_trainer, trainer.fit,
model.pt; no Snakemake). The config: config/config.yaml plus arch.name=resnet18 (timm, from
scratch), preprocessing {id: size112, pipeline: [Resize 112x112]} on the fly, the albumentations
augmentation of image_throughput.py, sampling.num_workers=2, batch_size=64,
sampling.enable_caching=false (true for the context rows, with cache_max_size raised so that both
sizes are cached), trainer.max_epochs=1, limit_train_batches=BATCHES (default 10, --quick 3),
limit_val_batches=1 (train_fold needs a validation loss).

Measured from this process while the step runs: every 50 ms the RSS of the job process and of all
its descendants (the DataLoader workers: 2 for training, 2 more for the validation batch), summed;
the figure is the maximum of that sum over the run, 2x against 1x (target: within 10 %). Also
reported: the same sum while training (at most the job and its 2 training workers alive), the job
process alone (sampled, and the kernel's high-water mark from wait4's ru_maxrss), and the PSS of
the tree (pages shared between the job and its forked workers counted once, not once per process
as in the RSS sum), read from /proc/<pid>/smaps_rollup every 0.5 s (it costs ~10 ms per process).
The peak of the sum falls in validation: its 2 workers are forked from the job after training
and each shows most of the job's resident pages as its own RSS (880-1,160 MiB each in smoke runs,
from run to run and whatever the number of images; 290-360 MiB PSS), so that figure scatters by
several percent; the job alone and the training-phase sum are steadier. Caching on keeps the
decoded 112x112 training and validation images in memory, ~37 KB each, so it grows with the images
by design (context only).

    python benchmarks/memory.py [--repeats 2] [--images 5000] [--batches 10] [--no-caching-rows] [--quick]

--quick: 400 and 800 images, 3 batches, 1 repeat. Sides alternate within each round.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_cli import parse, parser, workspace
from bench_images import NUM_WORKERS, data_folder, image_task, job_config_file, task_config
from bench_processes import env_with
from bench_report import Figure, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

TARGET = 1.10
SAMPLE_S = 0.05  # RSS sampling period
PSS_EVERY = 10  # PSS every 10th sample (0.5 s)
MIB = 2**20
CACHED_BYTES = 112 * 112 * 3  # one cached image after the on-the-fly Resize (uint8)


def pss_bytes(pid: int) -> int | None:
    """The PSS of process ``pid`` (from smaps_rollup), None when it is gone or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return None


def watch(cmd: list[str], cwd: Path, log: Path) -> dict[str, Any]:
    """Run ``cmd`` and sample the memory of its process tree until it exits; the peaks."""
    import psutil

    peak = {"tree_rss": 0, "train_rss": 0, "main_rss": 0, "tree_pss": 0, "processes": 0}
    per_process: dict[int, dict[str, int]] = {}  # pid -> its own peaks (MiB in the result)
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env_with(), stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        for tick in itertools.count():
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            with contextlib.suppress(psutil.Error):
                tree = [root, *root.children(recursive=True)]
                rss = {}
                for p in tree:
                    with contextlib.suppress(psutil.Error):
                        rss[p.pid] = p.memory_info().rss
                peak["tree_rss"] = max(peak["tree_rss"], sum(rss.values()))
                if len(rss) <= 1 + NUM_WORKERS:  # before validation forks its own workers
                    peak["train_rss"] = max(peak["train_rss"], sum(rss.values()))
                peak["main_rss"] = max(peak["main_rss"], rss.get(proc.pid, 0))
                peak["processes"] = max(peak["processes"], len(rss))
                for pid_, value in rss.items():
                    own = per_process.setdefault(pid_, {"rss": 0, "pss": 0})
                    own["rss"] = max(own["rss"], value)
                if tick % PSS_EVERY == 0:
                    pss = {p: pss_bytes(p) or 0 for p in rss}
                    peak["tree_pss"] = max(peak["tree_pss"], sum(pss.values()))
                    for pid_, value in pss.items():
                        per_process[pid_]["pss"] = max(per_process[pid_]["pss"], value)
            time.sleep(SAMPLE_S)
    peak = {k: (v / MIB if k != "processes" else v) for k, v in peak.items()}
    peak["main_maxrss_kernel"] = usage.ru_maxrss / 1024  # KiB on Linux
    peak["per_process"] = {
        ("job" if pid == proc.pid else str(pid)): {k: round(v / MIB) for k, v in own.items()}
        for pid, own in per_process.items()
    }
    peak["wall"] = time.perf_counter() - started
    peak["returncode"] = proc.returncode
    return peak


def measure(args: argparse.Namespace, root: Path, data: Path, tasks: dict[str, str], load: LoadLog):
    runs: dict[str, list[dict[str, Any]]] = {}
    counter = itertools.count(1)

    def side(size: str, caching: bool):
        def run_once() -> float:
            n = next(counter)
            name = f"{size}-{'cached' if caching else 'nocache'}-{n}"
            overrides = task_config(name, data, tasks[size], batches=args.batches, caching=caching)
            config, step = job_config_file(root / "configs" / f"{name}.json", overrides)
            cmd = [sys.executable, "-m", "mml_core.jobs.runner", "--config", str(config), "--step", step,
                   "--threads", "1"]  # fmt: skip
            result = watch(cmd, root, root / f"{name}.out")
            if result["returncode"] != 0:
                log = root / "results" / name / "logs" / f"{step}.log"
                tail = (
                    log.read_text()[-4000:] if log.is_file() else (root / f"{name}.out").read_text()[-4000:]
                )
                raise RuntimeError(
                    f"the training step failed (exit {result['returncode']}); {log} ends with:\n{tail}"
                )
            runs.setdefault(f"{size}, caching {'on' if caching else 'off'}", []).append(result)
            logger.info("%s: peak MiB per process (rss, pss every 0.5 s): %s", name, result["per_process"])
            return result["tree_rss"]

        return run_once

    sides = {"1x, caching off": side("1x", False), "2x, caching off": side("2x", False)}
    if args.caching_rows:
        sides.update({"1x, caching on": side("1x", True), "2x, caching on": side("2x", True)})
    alternate(sides, args.repeats, load)

    def med(key: str, which: str) -> float:
        return median([r[which] for r in runs[key]])

    def ratio(caching: str, which: str) -> float:
        one, two = runs[f"1x, caching {caching}"], runs[f"2x, caching {caching}"]
        return median(paired_ratios([r[which] for r in two], [r[which] for r in one]))

    n1, n2 = args.images, 2 * args.images
    figures = []
    for caching in ("off", "on") if args.caching_rows else ("off",):
        one, two = f"1x, caching {caching}", f"2x, caching {caching}"
        r = ratio(caching, "tree_rss")
        off = caching == "off"
        figures += [
            Figure(
                f"peak memory, caching {caching}: {n2:,} / {n1:,} images (RSS, process tree)"
                + ("" if off else " (context: grows by design)"),
                f"<= {TARGET:.2f}x" if off else "-",
                f"{r:.3f}x",
                (r <= TARGET) if off else None,
                r,
            ),
            Figure(
                "  peak RSS of the job + its DataLoader workers: 1x, 2x",
                "-",
                f"{med(one, 'tree_rss'):.0f} MiB, {med(two, 'tree_rss'):.0f} MiB "
                f"(up to {max(r['processes'] for r in runs[one] + runs[two])} processes)",
                None,
                med(two, "tree_rss"),
            ),
            Figure(
                f"  the same while training (job + {NUM_WORKERS} workers, before validation): 1x, 2x (ratio)",
                "-",
                f"{med(one, 'train_rss'):.0f}, {med(two, 'train_rss'):.0f} MiB ({ratio(caching, 'train_rss'):.3f}x)",
                None,
                ratio(caching, "train_rss"),
            ),
            Figure(
                "  job process alone: 1x, 2x (ratio); kernel high-water mark",
                "-",
                f"{med(one, 'main_rss'):.0f}, {med(two, 'main_rss'):.0f} MiB ({ratio(caching, 'main_rss'):.3f}x); "
                f"{med(one, 'main_maxrss_kernel'):.0f}, {med(two, 'main_maxrss_kernel'):.0f} MiB",
                None,
                ratio(caching, "main_rss"),
            ),
            Figure(
                "  PSS of the tree (shared pages once, every 0.5 s): 1x, 2x (ratio)",
                "-",
                f"{med(one, 'tree_pss'):.0f}, {med(two, 'tree_pss'):.0f} MiB ({ratio(caching, 'tree_pss'):.3f}x)",
                None,
                ratio(caching, "tree_pss"),
            ),
        ]
        if not off:
            figures.append(
                Figure(
                    "  the cached images alone would take (train + val, 112x112x3 uint8): 1x, 2x",
                    "-",
                    f"{n1 * CACHED_BYTES / MIB:.0f} MiB, {n2 * CACHED_BYTES / MIB:.0f} MiB",
                    None,
                )
            )
    figures.append(
        Figure(
            "  wall time of one step: 1x, 2x (caching off)",
            "-",
            f"{med('1x, caching off', 'wall'):.1f} s, {med('2x, caching off', 'wall'):.1f} s "
            f"({args.batches} training batches of 64, 1 validation batch)",
            None,
        )
    )
    for key, values in runs.items():
        logger.info("%-18s tree RSS %s MiB", key, spread([r["tree_rss"] for r in values]))
    return figures, runs


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=2, quick_repeats=1)
    p.add_argument(
        "--images", type=int, default=None, help="images at 1x (default 5000, --quick 400); 2x doubles it"
    )
    p.add_argument(
        "--batches", type=int, default=None, help="training batches per step (default 10, --quick 3)"
    )
    p.add_argument(
        "--no-caching-rows",
        dest="caching_rows",
        action="store_false",
        help="skip the context rows with sampling.enable_caching=true",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of the generated tasks, kept and reused (default: --workdir/image-data, else temporary)",
    )
    args = parse(p, argv)
    args.images = args.images or (400 if args.quick else 5000)
    args.batches = args.batches or (3 if args.quick else 10)
    full_batches = (args.images - args.images // 5) // 64
    if not 1 <= args.batches <= full_batches:
        p.error(f"--batches must be in 1..{full_batches} (full batches of the 1x task's training split)")
    started = time.time()
    load = LoadLog()
    with workspace(args, "memory") as root:
        data = data_folder(args, root)
        tasks = {"1x": image_task(data, args.images), "2x": image_task(data, 2 * args.images)}
        figures, runs = measure(args, root, data, tasks, load)
    details = {"images": [args.images, 2 * args.images], "batches": args.batches, "runs": runs}
    report("peak memory of a training step", figures, details, args.json, started, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
