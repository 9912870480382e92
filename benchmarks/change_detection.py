"""Change detection while planning: data fingerprints of 10,000 and 100,000 images, step records.

Every plan (``snakemake``, ``snakemake -n``) fingerprints the data of each task (the task file
and the size and mtime of every file it points to, see mml_core.tasks.fingerprint) and reads the
record of every finished step (mml_core.schedulers.plan.Plan.incomplete). Measured here:

  fingerprint N images   parse the task file (which planning does anyway for the folds) and stat
                         every image: ``data_fingerprint`` of a synthetic task with N images
  ... of which stat      the part that is change detection alone (the task file parsed already)
  snakemake -n           the whole plan of a one-fold experiment on that task, for scale
  10,000 step records    ``Plan.incomplete`` of a 10,000-step schedule whose steps all finished,
                         each record the size of a real train_fold record

Images are empty files (a fingerprint never reads them). Figures are with the file system's
metadata in memory (a plan right after another); ``--cold`` drops the page cache before each
measurement (root only, affects the whole machine) for the first plan of a day or a network
file system.

    python benchmarks/change_detection.py [--sizes 10000 100000] [--repeats 3] [--cold] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from bench_cli import parse, parser, workspace
from bench_fixtures import demo_data, experiment_file
from bench_processes import run, snakemake_cmd
from bench_report import Figure, fmt_s, report
from bench_timing import LoadLog, alternate, median

logger = logging.getLogger("benchmarks")

STEPS = 10_000
SCHEDULER = textwrap.dedent(
    """
    from mml_core.schedulers import AbstractBaseScheduler


    class Steps(AbstractBaseScheduler):
        def __init__(self, cfg):
            super().__init__(cfg, available_subroutines=["synthetic"])

        def create_routine(self):
            for i in range({n}):
                self.add_step(self.my_step, [i], after=[])

        def my_step(self, i):
            pass
    """
)


def synthetic_task(data: Path, n: int) -> Path:
    """An MML task of ``n`` empty image files, two classes, five stratified folds, 10 % test."""
    from mml_core.tasks.description import PNG_CLASSIFICATION_MODALITIES, TaskDescription, write_task_file
    from mml_core.tasks.index import dataset_dir, task_file_path

    name = f"synth{n}"
    images = dataset_dir(data, name) / "images"
    images.mkdir(parents=True, exist_ok=True)
    ids = [f"img{i:06d}" for i in range(n)]
    for sample in ids:
        (images / f"{sample}.png").touch()
    samples = {i: {"image": f"images/{i}.png", "class": k % 2} for k, i in enumerate(ids)}
    test = ids[: n // 10]
    train = ids[n // 10 :]
    desc = TaskDescription(
        name=name, task_type="classification", idx_to_class={0: "a", 1: "b"},
        modalities=dict(PNG_CLASSIFICATION_MODALITIES), train_folds=[train[k::5] for k in range(5)],
        train_samples={i: samples[i] for i in train}, test_samples={i: samples[i] for i in test},
    )  # fmt: skip
    return write_task_file(desc, task_file_path(data, name, name))


def drop_caches(cold: bool) -> None:
    if cold:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def finished_records(work: Path, data: Path) -> Any:
    """A Plan of a 10,000-step schedule in ``work`` whose steps all have a realistic record and file."""
    work.mkdir()
    sys.path.insert(0, str(work))
    (work / "synthetic_steps.py").write_text(SCHEDULER.format(n=STEPS))
    os.chdir(work)
    from mml_core.config import load_config
    from mml_core.schedulers.plan import Plan
    from mml_core.schedulers.registry import scheduler_class

    cfg = load_config({"data_dir": str(data), "task_list": ["sk_digits"], "pivot": {"name": None},
                       "mode": {"scheduler": "synthetic_steps:Steps", "subroutines": ["synthetic"]}})  # fmt: skip
    plan = Plan(scheduler_class(cfg.mode.scheduler)(cfg))
    history = [{"train/loss": 0.5, "val/sk_digits/loss": 0.6, "val/sk_digits/acc": 0.8, "epoch": e} for e in range(8)]
    for ix, name in enumerate(plan.names):
        folder = plan.layout.step_dir(name)
        folder.mkdir(parents=True)
        (folder / "model.pt").write_bytes(b"\0" * 100)
        record = {"step": name, "entry": plan.scheduler.schedule_entry(ix), "config_hash": "0" * 16,
                  "files": {f"steps/{name}/model.pt": 100}, "inputs": [], "results": {"history": history}}  # fmt: skip
        (folder / "metrics.json").write_text(json.dumps(record, indent=2))
    return plan


def measure_images(args: argparse.Namespace, root: Path, n: int, load: LoadLog) -> dict[str, list[float]]:
    """Alternating rounds of: fingerprint (parse + stat), stat alone, and ``snakemake -n`` on ``n`` images."""
    from mml_core.tasks import read_task_file
    from mml_core.tasks.fingerprint import data_fingerprint

    task_file = synthetic_task(root / "data", n)
    desc = read_task_file(task_file)
    work = root / f"plan{n}"
    work.mkdir()
    config = experiment_file(
        work / "synth.yaml", proj="synth", data_dir=str(root / "data"), task_list=[f"synth{n}"],
        pivot={"name": f"synth{n}"}, mode={"cv": False},
    )  # fmt: skip
    plan_cmd = snakemake_cmd(args.repo, "-n", "--quiet", "--configfile", str(config))
    run(plan_cmd, work)  # writes the fingerprint once: the measured plans only compare

    def timed(action) -> float:
        drop_caches(args.cold)
        start = time.perf_counter()
        action()
        return time.perf_counter() - start

    return alternate(
        {
            "fingerprint": lambda: timed(lambda: data_fingerprint(task_file, read_task_file(task_file))),
            "stat": lambda: timed(lambda: data_fingerprint(task_file, desc)),
            "plan": lambda: timed(lambda: run(plan_cmd, work)),
        },
        args.repeats,
        load,
    )


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=3)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="images per task")
    p.add_argument("--cold", action="store_true", help="drop the page cache before each measurement (root)")
    args = parse(p, argv)
    if args.quick:
        args.sizes = [min(args.sizes)]
    started, load, figures, details = time.time(), LoadLog(), [], {}
    with workspace(args, "change_detection") as root:
        for n in args.sizes:
            values = measure_images(args, root, n, load)
            details[str(n)] = values
            figures += [
                Figure(f"fingerprint {n:,} images (parse + stat)", "-", fmt_s(median(values["fingerprint"])), None,
                       median(values["fingerprint"])),
                Figure("  of which stat (change detection alone)", "-", fmt_s(median(values["stat"])), None,
                       median(values["stat"])),
                Figure(f"  snakemake -n of a one-fold experiment on {n:,} images", "-", fmt_s(median(values["plan"])),
                       None, median(values["plan"])),
            ]  # fmt: skip
        if not args.quick:
            plan = finished_records(root / "records", demo_data(root / "demo"))

            def records() -> float:
                drop_caches(args.cold)
                plan.__dict__.pop("incomplete", None)
                start = time.perf_counter()
                assert not plan.incomplete
                return time.perf_counter() - start

            values = alternate({"records": records}, args.repeats, load)
            details["records"] = values
            figures.append(Figure(f"read and check {STEPS:,} finished step records", "-",
                                  fmt_s(median(values["records"])), None, median(values["records"])))  # fmt: skip
    details["cold"] = args.cold
    report("change detection while planning" + (" (cold cache)" if args.cold else ""), figures, details, args.json,
           started, load)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
