"""Planning: `snakemake -n --quiet` of synthetic schedules with 1,000 and 10,000 steps.

A synthetic custom scheduler (generated into the working directory, selected with
`mode.scheduler`) appends N no-op steps, in two variants:

  chain        no dependencies declared: the seed's order, each step after the previous one
  independent  step_dependencies() returns []: every step only between prepare_exp and finish_exp

against Snakemake's floor: a plain Snakefile with 3 rules (prepare, a wildcard step rule,
finish) and the same number of jobs (N + 3 with `all`), as independent steps and, optionally,
as a chain built by an input function. All sides of one size run alternating in each round.
Every run has a PYTHONPATH on which importing torch, Lightning or torchmetrics raises, so a
successful plan proves that planning imports none of them. Job counts are checked once at the
smallest size (a run with `--quiet rules reason host`, not timed).

    python benchmarks/planning.py [--sizes 1000 10000] [--repeats 2] [--profile] [--quick]

`--profile` also runs cProfile on `snakemake -n --quiet` of the largest schedules and their
floors and prints what our plan costs beyond the floor: function calls (a count that load does
not change), profiled time, and the functions with the most extra time.
"""

from __future__ import annotations

import logging
import pstats
import re
import sys
import textwrap
import time
from pathlib import Path

from bench_cli import parse, parser, workspace
from bench_fixtures import custom_scheduler_file, demo_data
from bench_processes import SNAKEMAKE, import_blocker, run, snakemake_cmd
from bench_report import Figure, fmt_s, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

TARGET_S = 10.0
TARGET_SIZE = 10_000
# our plan against Snakemake alone on the same jobs, at TARGET_SIZE
TARGET_RATIO = 1.2

SCHEDULER = textwrap.dedent(
    '''
    from mml_core.schedulers import AbstractBaseScheduler

    N = {n}


    class Chain(AbstractBaseScheduler):
        """N no-op steps; no dependencies declared, so each runs after the previous (the seed's order)."""

        def __init__(self, cfg):
            super().__init__(cfg, available_subroutines=["synthetic"])

        def create_routine(self):
            for i in range(N):
                self.commands.append(self.my_step)
                self.params.append([i])

        def my_step(self, i):
            self.step_results["i"] = i


    class Independent(Chain):
        """The same steps, declared independent of each other."""

        def step_dependencies(self, command_ix):
            return []
    '''
)

FLOOR = textwrap.dedent(
    """
    # Snakemake's floor: 3 rules, N + 3 jobs (prepare, N steps, finish, all), shell jobs.
    import sys

    N = int(config["n"])
    CHAIN = bool(int(config.get("chain", 0)))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * N + 2000))


    rule all:
        input: "steps/finish/metrics.json"


    rule prepare:
        output: "steps/prepare/metrics.json"
        shell: "touch {output}"


    def previous_step(wildcards):
        i = int(wildcards.i)
        return f"steps/step--{i - 1}/metrics.json" if i else "steps/prepare/metrics.json"


    rule step:
        # independent: a plain string, the cheapest input; chain: an input function per job
        input: previous_step if CHAIN else "steps/prepare/metrics.json"
        output: "steps/step--{i}/metrics.json"
        shell: "touch {output}"


    rule finish:
        input: expand("steps/step--{i}/metrics.json", i=range(N))
        output: "steps/finish/metrics.json"
        shell: "touch {output}"
    """
)

VARIANTS = ("floor", "floor_chain", "independent", "chain")


def prepare(root: Path, data: Path, variant: str, n: int) -> tuple[Path, list[str]]:
    """A working directory for one (variant, size) and the snakemake arguments that plan it."""
    work = root / f"{variant}-{n}"
    work.mkdir(parents=True)
    if variant.startswith("floor"):
        (work / "Snakefile").write_text(FLOOR)
        (work / "floor.yaml").write_text(f"n: {n}\nchain: {int(variant == 'floor_chain')}\n")
        return work, ["-s", "Snakefile", "--configfile", "floor.yaml"]
    (work / f"synth_{n}.py").write_text(SCHEDULER.format(n=n))
    cls = "Chain" if variant == "chain" else "Independent"
    custom_scheduler_file(work / "synth.yaml", "synth", data, f"synth_{n}:{cls}", "synthetic")
    return work, ["--configfile", "synth.yaml"]


def command(repo: Path, variant: str, args: list[str], *flags: str) -> list[str]:
    if variant.startswith("floor"):
        return [str(SNAKEMAKE), *args, "-n", *flags]
    return snakemake_cmd(repo, *args, "-n", *flags)


def job_count(output: str) -> int:
    match = re.search(r"^total\s+(\d+)$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no job stats in the output of snakemake -n:\n{output[-3000:]}")
    return int(match.group(1))


def profile(repo: Path, root: Path, data: Path, n: int, variant: str, env: dict[str, str]) -> pstats.Stats:
    """cProfile of one dry run of ``variant`` with ``n`` steps."""
    work, args = prepare(root / "profile", data, variant, n)
    out = work / "profile.pstats"
    # the snakemake entry point is a Python script: cProfile runs it as such
    cmd = [sys.executable, "-m", "cProfile", "-o", str(out), *command(repo, variant, args, "--quiet")]
    seconds = run(cmd, cwd=work, env=env).seconds
    logger.info("profiled %s, %d steps: %.1f s", variant, n, seconds)
    return pstats.Stats(str(out))


def _by_function(stats: pstats.Stats) -> dict[str, tuple[int, float]]:
    """'file:line(function)' -> (calls, own time), site-packages paths shortened."""
    table: dict[str, tuple[int, float]] = {}
    for (filename, line, func), (_cc, nc, tt, _ct, _callers) in stats.stats.items():
        key = f"{filename.split('site-packages/')[-1]}:{line}({func})"
        calls, own = table.get(key, (0, 0.0))
        table[key] = (calls + nc, own + tt)
    return table


def compare_profiles(name: str, ours: pstats.Stats, floor: pstats.Stats, repo: Path, top: int = 12) -> dict:
    """Print what our dry run does beyond Snakemake's floor: calls, time, the functions that differ."""
    mine, base = _by_function(ours), _by_function(floor)
    own_code = sum(
        tt for key, (nc, tt) in mine.items() if "mml_core" in key or str(repo) in key or "synth_" in key
    )
    print(
        f"\n-- cProfile, {name} against {floor_name(name)}: {ours.total_calls / 1e6:.1f} M function calls "
        f"against {floor.total_calls / 1e6:.1f} M, {ours.total_tt:.1f} s profiled against {floor.total_tt:.1f} s; "
        f"own time in mml_core and the workflow's files: {own_code:.2f} s --"
    )
    print("   functions with the most extra own time (extra calls):")
    rows = sorted(
        ((tt - base.get(k, (0, 0.0))[1], nc - base.get(k, (0, 0.0))[0], k) for k, (nc, tt) in mine.items()),
        reverse=True,
    )[:top]
    for extra_tt, extra_calls, key in rows:
        print(f"   {extra_tt:7.2f} s {extra_calls:+10d} calls  {key}")
    return {
        "calls": ours.total_calls,
        "floor_calls": floor.total_calls,
        "profiled_s": ours.total_tt,
        "floor_profiled_s": floor.total_tt,
        "own_code_s": own_code,
        "extra": [(k, round(t, 3), n) for t, n, k in rows],
    }


def floor_name(variant: str) -> str:
    return "floor_chain" if variant == "chain" else "floor"


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=2, quick_repeats=1)
    p.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=None,
        help="numbers of steps (default 1000 10000; --quick: 1000 10000 with 1 repeat)",
    )
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--profile", action="store_true", help="cProfile the largest schedules afterwards")
    args = parse(p, argv)
    sizes = args.sizes or [1000, TARGET_SIZE]
    started = time.time()
    load = LoadLog()  # cores other processes used during each measurement
    results: dict[int, dict[str, list[float]]] = {}
    details: dict = {"sizes": sizes, "variants": args.variants}
    with workspace(args, "planning") as root:
        data = demo_data(root / "data")
        env = import_blocker(root / "blocker")
        for n in sorted(sizes):
            dirs = {v: prepare(root, data, v, n) for v in args.variants}
            if n == min(sizes):
                for v, (work, vargs) in dirs.items():
                    out = run(
                        command(args.repo, v, vargs, "--quiet", "rules", "reason", "host"), work, env
                    ).output
                    if job_count(out) != n + 3:
                        raise RuntimeError(f"{v}: expected {n + 3} jobs, snakemake planned {job_count(out)}")
                logger.info("%d steps: every variant plans %d jobs (checked)", n, n + 3)
            sides = {
                v: (lambda v=v, w=work, a=vargs: run(command(args.repo, v, a, "--quiet"), w, env).seconds)
                for v, (work, vargs) in dirs.items()
            }
            logger.info("%d steps: %d alternating rounds of %s", n, args.repeats, ", ".join(sides))
            results[n] = alternate(sides, args.repeats, load)
        if args.profile:
            n = max(sizes)
            stats = {v: profile(args.repo, root, data, n, v, env) for v in VARIANTS}
            details["profiles"] = {
                v: compare_profiles(v, stats[v], stats[floor_name(v)], args.repo)
                for v in ("independent", "chain")
            }
    figures = []
    for n in sorted(results):
        values = results[n]
        for v in ("independent", "chain"):
            if v not in values:
                continue
            t = median(values[v])
            target = f"<= {TARGET_S:.0f} s" if n == TARGET_SIZE else "-"
            met = (t <= TARGET_S) if n == TARGET_SIZE else None
            figures.append(Figure(f"plan {n:,} steps, {v}", target, fmt_s(t), met, t))
            floor = "floor_chain" if v == "chain" and "floor_chain" in values else "floor"
            if floor in values:
                ratio = median(paired_ratios(values[v], values[floor]))
                extra = median([a - b for a, b in zip(values[v], values[floor])])
                at_target = n == TARGET_SIZE
                figures.append(
                    Figure(
                        f"  / snakemake floor ({floor})",
                        f"<= {TARGET_RATIO}x" if at_target else "-",
                        f"{ratio:.2f}x, +{extra:.1f} s",
                        (ratio <= TARGET_RATIO) if at_target else None,
                        ratio,
                    )
                )
        for v in ("floor", "floor_chain"):
            if v in values:
                figures.append(
                    Figure(
                        f"  snakemake floor {n:,} jobs ({v})",
                        "-",
                        fmt_s(median(values[v])),
                        None,
                        median(values[v]),
                    )
                )
    if len(results) > 1:
        # the cost model of the brief: fixed seconds + ms per job, from the smallest and largest size
        small, large = min(results), max(results)
        for v in results[large]:
            slope = (median(results[large][v]) - median(results[small][v])) / (large - small)
            fixed = median(results[small][v]) - slope * small
            figures.append(
                Figure(
                    f"model {v}: fixed + per step",
                    "-",
                    f"{fixed:.1f} s + {slope * 1000:.2f} ms/step",
                    None,
                    slope,
                )
            )
    figures.append(Figure("torch imported while planning", "no", "no (blocked import never hit)", True))
    for n, values in results.items():
        for v, vals in values.items():
            logger.info("%6d steps %-12s %s s", n, v, spread(vals))
    details["seconds"] = {str(n): v for n, v in results.items()}
    report("planning", figures, details, args.json, started, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
