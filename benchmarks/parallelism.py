"""Parallelism: the default experiment (config/config.yaml, 5 folds) with --cores 1 against --cores 2.

Each run starts in a fresh working directory; the demo tasks are written once beforehand and
shared through `data_dir`, so data generation is not timed. Runs alternate (1, 2, 1, 2 ...).
Besides the wall times and their ratio, the report gives the best ratio the schedule allows on
2 cores, max(critical path, wall / 2) / wall, from the job times the --cores 1 run recorded
in each step's metrics.json, and how much slower the jobs themselves ran side by side (sum of
their own times with --cores 2 over --cores 1: memory bandwidth, caches, other processes).

    python benchmarks/parallelism.py [--repeats 1] [--quick]

--quick runs a shorter experiment (3 epochs instead of 8) for a smoke run.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from pathlib import Path

from bench_cli import parse, parser, workspace
from bench_fixtures import demo_data
from bench_processes import run, snakemake_cmd
from bench_report import Figure, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

TARGET = 0.6


def job_times(work: Path) -> dict[str, float]:
    """Step name -> the job's own wall time (metrics.json provenance) of a finished run."""
    times = {}
    for path in sorted(work.glob("results/*/steps/*/metrics.json")):
        record = json.loads(path.read_text())
        times[record["step"]] = record["provenance"]["wall_time_s"]
    return times


def ideal_ratio(times: dict[str, float], wall_1: float, cores: int = 2) -> tuple[float, float]:
    """(critical path in s, best wall ratio on ``cores`` cores) of the TrainingScheduler's DAG.

    prepare_exp -> train_fold (parallel) -> predict_fold (after its fold) and test_task (after all
    folds) -> finish_exp. What the --cores 1 run spent outside the jobs' recorded times (process
    start and exit, imports, snakemake) is spread evenly over the jobs.
    """
    per_job = max(0.0, wall_1 - sum(times.values())) / max(len(times), 1)
    t = {k: v + per_job for k, v in times.items()}
    train = [v for k, v in t.items() if k.startswith("train_fold")]
    after = [v for k, v in t.items() if k.startswith(("predict_fold", "test_task"))]
    critical = (
        t.get("prepare_exp", 0.0)
        + max(train, default=0.0)
        + max(after, default=0.0)
        + t.get("finish_exp", 0.0)
    )
    return critical, max(critical, wall_1 / cores) / wall_1


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=1, quick_repeats=1)
    args = parse(p, argv)
    started = time.time()
    load = LoadLog()  # cores other processes used during each measurement
    recorded: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    extra = ["trainer={max_epochs: 3}"] if args.quick else []
    with workspace(args, "parallelism") as root:
        data = demo_data(root / "data")

        runs_started = itertools.count(1)

        def experiment(cores: int) -> float:
            work = root / f"cores{cores}-{next(runs_started)}"
            work.mkdir()
            cmd = snakemake_cmd(args.repo, "--cores", str(cores), "--config", f"data_dir={data}", *extra)
            result = run(cmd, cwd=work)
            (work / "snakemake.out").write_text(result.output)
            if "steps (100%) done" not in result.output:
                raise RuntimeError(f"the run in {work} did not finish every step:\n{result.output[-3000:]}")
            recorded[cores].append(job_times(work))
            return result.seconds

        values = alternate(
            {"cores 1": lambda: experiment(1), "cores 2": lambda: experiment(2)}, args.repeats, load
        )
    one, two = values["cores 1"], values["cores 2"]
    ratio = median(paired_ratios(two, one))
    critical, ideal = ideal_ratio(recorded[1][0], one[0])
    sum_1 = median([sum(r.values()) for r in recorded[1]])
    sum_2 = median([sum(r.values()) for r in recorded[2]])
    figures = [
        Figure(
            "parallelism: wall --cores 2 / --cores 1", f"<= {TARGET}", f"{ratio:.2f}", ratio <= TARGET, ratio
        ),
        Figure("  wall --cores 1, --cores 2", "-", f"{median(one):.1f} s, {median(two):.1f} s", None),
        Figure(
            "  best ratio the schedule allows on 2 cores",
            "-",
            f"{ideal:.2f} (critical path {critical:.0f} s)",
            None,
            ideal,
        ),
        Figure(
            "  sum of the jobs' own times, --cores 2 / --cores 1",
            "-",
            f"{sum_2 / sum_1:.2f} ({sum_2:.0f} s / {sum_1:.0f} s): slowdown of jobs running side by side",
            None,
            sum_2 / sum_1,
        ),
    ]
    for cores in (1, 2):
        logger.info(
            "--cores %d: %s s; job times of the first run: %s",
            cores,
            spread(values[f"cores {cores}"]),
            {k: round(v, 1) for k, v in recorded[cores][0].items()},
        )
    report("parallelism", figures, {"wall_s": values, "job_times": recorded}, args.json, started, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
