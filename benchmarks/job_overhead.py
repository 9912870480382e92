"""Per-job overhead: one no-op training-like step through snakemake against `import torch, pytorch_lightning`.

The step belongs to a seed-style custom scheduler with one command that does nothing. It is not
torch-free (only prepare_exp/finish_exp are), so its job pays what every training-like step pays:
Python start, mml_core, rebuilding the scheduler from the config, seeding torch and Lightning,
writing metrics.json. Each round, side by side:

  floor     python -c "import torch, pytorch_lightning"
  floor, no teardown   the same ending in os._exit(0): how much of the floor is Python's exit
  run       snakemake --cores 1 --force <the no-op step's metrics.json>   (only that job runs)
  dry       the same command with -n --quiet: Snakemake's start plus our planning, no job
  bare      snakemake -n --quiet on a one-rule Snakefile: Snakemake's own start

The job process is watched while `run` runs (psutil: its fork and its exit), which splits the
one-step run into start + planning (until the fork), the job, and what follows (snakemake
registering the job and exiting). The headline is (job + what follows) / floor: the no-op step
through snakemake, from the moment snakemake starts it, against the bare import.

    python benchmarks/job_overhead.py [--repeats 4] [--quick]
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
from bench_cli import parse, parser, workspace
from bench_fixtures import custom_scheduler_file, demo_data
from bench_processes import FLOOR_CMD, SNAKEMAKE, run, snakemake_cmd
from bench_report import Figure, fmt_s, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

TARGET = 1.3
# the floor without Python's teardown at exit (after importing torch and Lightning it takes seconds)
FLOOR_NO_TEARDOWN = [sys.executable, "-c", "import os, torch, pytorch_lightning; os._exit(0)"]
STEP = "noop--0"
SCHEDULER = textwrap.dedent(
    '''
    from mml_core.schedulers import AbstractBaseScheduler


    class NoopScheduler(AbstractBaseScheduler):
        """One step that does nothing; not torch-free, so the runner seeds torch for it."""

        def __init__(self, cfg):
            super().__init__(cfg, available_subroutines=["noop"])

        def create_routine(self):
            self.commands.append(self.noop)
            self.params.append([0])

        def noop(self, i):
            pass
    '''
)


def tracked_run(cmd: list[str], cwd: Path, step: str) -> tuple[float, float, float]:
    """Wall time of ``cmd``; time from its start to the fork of the job running ``step``; the job's
    wall time (fork to exit)."""
    with tempfile.TemporaryFile("w+") as out:
        start, started = time.perf_counter(), time.time()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        parent = psutil.Process(proc.pid)
        job, job_start, job_end = None, None, None
        while proc.poll() is None:
            if job is None:
                for child in parent.children(recursive=True):
                    try:
                        cmdline = child.cmdline()
                        if "--step" in cmdline and cmdline[cmdline.index("--step") + 1] == step:
                            # the shell that exec's the job has the same pid and start time
                            job, job_start = child, child.create_time()
                            break
                    except (psutil.Error, IndexError):
                        continue
                time.sleep(0.05)  # the start time is exact whenever we find it: poll gently
            elif job_end is None:
                try:
                    gone = job.status() == psutil.STATUS_ZOMBIE
                except psutil.NoSuchProcess:
                    gone = True
                if gone:
                    job_end = time.time()
                time.sleep(0.005)
            else:
                time.sleep(0.005)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            out.seek(0)
            raise RuntimeError(f"snakemake failed ({proc.returncode}):\n{out.read()[-4000:]}")
    if job_start is None:
        raise RuntimeError(f"no job process for step {step} was seen; did snakemake run it?")
    return seconds, job_start - started, (job_end or time.time()) - job_start


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=4, quick_repeats=2)
    args = parse(p, argv)
    started = time.time()
    load = LoadLog()  # cores other processes used during each measurement
    with workspace(args, "job_overhead") as root:
        data = demo_data(root / "data")
        work = root / "work"
        work.mkdir()
        (work / "noop_bench.py").write_text(SCHEDULER)
        custom_scheduler_file(work / "overhead.yaml", "overhead", data, "noop_bench:NoopScheduler", "noop")
        bare = root / "bare"
        bare.mkdir()
        (bare / "Snakefile").write_text('rule all:\n    output: "x"\n    shell: "touch {output}"\n')
        target = f"results/overhead/steps/{STEP}/metrics.json"
        base = ["--configfile", "overhead.yaml"]
        logger.info("First run of the whole schedule (prepare_exp, %s, finish_exp; not timed)", STEP)
        run(snakemake_cmd(args.repo, "--cores", "1", *base), cwd=work)
        run_cmd = snakemake_cmd(args.repo, "--cores", "1", *base, "--force", target)
        dry_cmd = snakemake_cmd(args.repo, "-n", "--quiet", *base, "--force", target)
        bare_cmd = [str(SNAKEMAKE), "-n", "--quiet", "--cores", "1"]
        job_walls: list[float] = []
        before_job: list[float] = []

        def run_side() -> float:
            total, pre, job = tracked_run(run_cmd, work, STEP)
            before_job.append(pre)
            job_walls.append(job)
            return total

        values = alternate(
            {
                "floor (import torch, pl)": lambda: run(FLOOR_CMD, cwd=root).seconds,
                "floor, no teardown": lambda: run(FLOOR_NO_TEARDOWN, cwd=root).seconds,
                "run (snakemake, 1 step)": run_side,
                "dry (snakemake -n)": lambda: run(dry_cmd, cwd=work).seconds,
                "bare (one-rule Snakefile)": lambda: run(bare_cmd, cwd=bare).seconds,
            },
            args.repeats,
            load,
        )
    floor, floor_exit, total, dry, bare_s = (values[k] for k in values)
    teardown = [a - b for a, b in zip(floor, floor_exit)]
    # the step through snakemake: from snakemake forking the job to snakemake's exit after it
    per_job = [t - pre for t, pre in zip(total, before_job)]
    after_job = [t - pre - j for t, pre, j in zip(total, before_job, job_walls)]
    ratio = median(paired_ratios(per_job, floor))
    job_ratio = median(paired_ratios(job_walls, floor))
    figures = [
        Figure(
            "per-job overhead: no-op step through snakemake / import floor",
            f"<= {TARGET}x",
            f"{ratio:.2f}x",
            ratio <= TARGET,
            ratio,
        ),
        Figure(
            "  job process alone (fork to exit) / import floor", "-", f"{job_ratio:.2f}x", None, job_ratio
        ),
        Figure("  import floor", "-", fmt_s(median(floor)), None, median(floor)),
        Figure(
            "    of which interpreter teardown at exit",
            "-",
            fmt_s(median(teardown)),
            None,
            median(teardown),
        ),
        Figure(
            "  one-step run: start to job, job, job to exit",
            "-",
            f"{median(before_job):.2f} s + {median(job_walls):.2f} s + {median(after_job):.2f} s",
            None,
        ),
        Figure("  snakemake -n of that run (start + planning)", "-", fmt_s(median(dry)), None, median(dry)),
        Figure("    snakemake -n of a one-rule Snakefile", "-", fmt_s(median(bare_s)), None, median(bare_s)),
        Figure(
            "  whole one-step run / import floor",
            "-",
            f"{median(paired_ratios(total, floor)):.2f}x",
            None,
            median(paired_ratios(total, floor)),
        ),
    ]
    details = dict(values)
    details.update({"job process": job_walls, "start to job": before_job, "job to exit": after_job})
    for name, v in {**values, "job process": job_walls, "start to job": before_job}.items():
        logger.info("%-28s %s s", name, spread(v))
    report("per-job overhead", figures, details, args.json, started, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
