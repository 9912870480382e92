"""Resume cost: the work redone after a training step is stopped mid-epoch and the same command rerun.

One training step (the default experiment's train_fold of fold 0; 8 epochs of sk_digits) runs
through snakemake with a ledger callback (configured through `cbs`, as a user would add one)
that appends every trained batch to a file: process, time, epoch, and a fingerprint of the
batch's sample indices. Per signal, in a fresh working directory:

  1. start `snakemake --cores 1 <train step's metrics.json>`; when the ledger shows epoch
     --stop-epoch at --stop-fraction of its batches, signal the whole process group (as Ctrl-C,
     a SLURM cancel or a killed session would);
  2. rerun the same command to completion.

Work redone = batches the rerun trained that the interrupted run had trained already (same
epoch and samples), in epochs. SIGKILL can only resume from the last end-of-epoch checkpoint;
SIGTERM saves a checkpoint at the next batch boundary. The wall time the interruption costs is
measured inside the runs (a separate uninterrupted run differs by more than that on a shared
machine; it only gives the batches per epoch): the stopped run's way out (signal to exit), the
restart (rerun start to its first batch: snakemake, the job with its torch import, the data,
the checkpoint) and the redone batches (their count times the median batch time).

    python benchmarks/resume_cost.py [--signals KILL TERM] [--stop-epoch 4] [--stop-fraction 0.5]
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench_cli import parse, parser, workspace
from bench_fixtures import demo_data, experiment_file
from bench_processes import run, snakemake_cmd
from bench_report import Figure, fmt_s, report
from bench_timing import LoadLog, median

logger = logging.getLogger("benchmarks")

TARGET_EPOCHS = 1.0
STEP = "train_fold--sk_digits_0"
LEDGER = textwrap.dedent(
    '''
    import hashlib
    import os
    import time

    import pytorch_lightning as pl


    class Ledger(pl.Callback):
        """Appends one line per trained batch: pid, time, epoch, batch_idx, sample fingerprint."""

        def __init__(self, path):
            self.path = path

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            ids = [part[2].tolist() for part in batch.values() if part is not None]
            key = hashlib.blake2b(repr(ids).encode(), digest_size=6).hexdigest()
            with open(self.path, "a") as fh:
                fh.write(f"{os.getpid()} {time.time():.4f} {trainer.current_epoch} {batch_idx} {key}\\n")
    '''
)


@dataclasses.dataclass
class Entry:
    pid: int
    time: float
    epoch: int
    batch: int
    key: str


def read_ledger(path: Path) -> list[Entry]:
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 5:
            entries.append(Entry(int(parts[0]), float(parts[1]), int(parts[2]), int(parts[3]), parts[4]))
    return entries


def prepare(root: Path, name: str, data: Path) -> tuple[Path, list[str]]:
    work = root / name
    work.mkdir()
    (work / "bench_ledger.py").write_text(LEDGER)
    ledger = {"_target_": "bench_ledger.Ledger", "path": str(work / "ledger.txt")}
    experiment_file(
        work / "resume.yaml",
        proj="resume",
        data_dir=str(data),
        mode={"cv": False, "subroutines": ["train"]},
        cbs={"ledger": ledger},
    )
    # the target first: --configfile takes every argument after it
    return work, [f"results/resume/steps/{STEP}/metrics.json", "--cores", "1", "--configfile", "resume.yaml"]


def start(repo: Path, work: Path, args: list[str]) -> subprocess.Popen:
    """The user's command in its own session, so that a signal can go to the whole group."""
    with open(work / "snakemake.out", "a") as out:
        return subprocess.Popen(
            snakemake_cmd(repo, *args),
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # a process started from a script may inherit "ignore SIGINT": restore the default
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - no threads here
        )


def interrupted_run(
    repo: Path,
    root: Path,
    data: Path,
    signum: signal.Signals,
    stop_epoch: int,
    stop_fraction: float,
    batches_per_epoch: int,
) -> dict:
    """Stop a run at (epoch, fraction), rerun it; what was redone and what it cost."""
    work, args = prepare(root, f"stop-{signum.name}", data)
    ledger = work / "ledger.txt"
    stop_batch = max(0, round(stop_fraction * batches_per_epoch) - 1)
    t0 = time.perf_counter()
    proc = start(repo, work, args)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        entries = read_ledger(ledger)
        if entries and (entries[-1].epoch, entries[-1].batch) >= (stop_epoch - 1, stop_batch):
            break
        time.sleep(0.003)
    else:
        raise RuntimeError(f"the run ended or stalled before epoch {stop_epoch}, batch {stop_batch + 1}")
    signalled = time.time()
    os.killpg(proc.pid, signum)
    code = proc.wait(timeout=300)
    exited = time.time()
    first_seconds = time.perf_counter() - t0
    if code == 0:
        raise RuntimeError(f"the run stopped with {signum.name} reported success")
    before = read_ledger(ledger)
    last = before[-1]
    logger.info(
        "%s at epoch %d batch %d (0-based) after %.1f s; exit %d",
        signum.name,
        last.epoch,
        last.batch,
        first_seconds,
        code,
    )
    t1 = time.perf_counter()
    rerun_started = time.time()
    rerun = start(repo, work, args)
    if rerun.wait(timeout=900) != 0:
        raise RuntimeError(f"the rerun failed; see {work / 'snakemake.out'}")
    rerun_seconds = time.perf_counter() - t1
    after = [e for e in read_ledger(ledger) if e.pid != last.pid]
    trained = {(e.epoch, e.key) for e in before}
    redone = [e for e in after if (e.epoch, e.key) in trained]
    record = json.loads((work / f"results/resume/steps/{STEP}/metrics.json").read_text())["results"]
    durations = [b.time - a.time for a, b in itertools.pairwise(before) if b.epoch == a.epoch]
    per_batch = median(durations) if durations else 0.0
    return {
        "signal": signum.name,
        "stopped_at": {"epoch": last.epoch, "batch": last.batch},
        "batches_before_stop": len(before),
        "batches_redone": len(redone),
        "epochs_redone": len(redone) / batches_per_epoch,
        "resumed_from": record.get("resumed_from"),
        "history_epochs": [r.get("epoch") for r in record.get("history", [])],
        "first_run_s": first_seconds,
        "rerun_s": rerun_seconds,
        "signal_to_exit_s": exited - signalled,
        "restart_to_first_batch_s": (after[0].time - rerun_started) if after else None,
        "redone_batches_s": len(redone) * per_batch,
        "batch_s": per_batch,
    }


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=1, quick_repeats=1)
    p.add_argument("--signals", nargs="+", default=["KILL", "TERM"], choices=["KILL", "TERM", "INT"])
    p.add_argument("--stop-epoch", type=int, default=4, help="1-based epoch to stop in (default 4 of 8)")
    p.add_argument("--stop-fraction", type=float, default=0.5, help="how far into that epoch (default 0.5)")
    args = parse(p, argv)
    started = time.time()
    results: list[dict] = []
    references: list[float] = []
    with workspace(args, "resume_cost") as root:
        data = demo_data(root / "data")
        for round_ in range(args.repeats):
            work, run_args = prepare(root, f"reference-{round_}", data)
            reference = run(snakemake_cmd(args.repo, *run_args), cwd=work)
            references.append(reference.seconds)
            ledger = read_ledger(work / "ledger.txt")
            epochs = sorted({e.epoch for e in ledger})
            batches_per_epoch = sum(1 for e in ledger if e.epoch == epochs[0])
            logger.info(
                "reference run: %.1f s, %d epochs of %d batches",
                reference.seconds,
                len(epochs),
                batches_per_epoch,
            )
            for name in args.signals:
                signum = signal.Signals[f"SIG{name}"]
                (root / f"round{round_}").mkdir(exist_ok=True)
                result = interrupted_run(
                    args.repo,
                    root / f"round{round_}",
                    data,
                    signum,
                    args.stop_epoch,
                    args.stop_fraction,
                    batches_per_epoch,
                )
                result["extra_s"] = (
                    result["signal_to_exit_s"]
                    + (result["restart_to_first_batch_s"] or 0.0)
                    + result["redone_batches_s"]
                )
                # for the record only: a separate run's wall time drifts by more than the difference
                result["vs_reference_s"] = result["first_run_s"] + result["rerun_s"] - reference.seconds
                result["round"] = round_
                logger.info(
                    "%s: %s",
                    name,
                    {k: (round(v, 2) if isinstance(v, float) else v) for k, v in result.items()},
                )
                results.append(result)
    figures = []
    for name in args.signals:
        mine = [r for r in results if r["signal"] == f"SIG{name}"]
        epochs_redone = max(r["epochs_redone"] for r in mine)
        batches = max(r["batches_redone"] for r in mine)
        stop = mine[0]["stopped_at"]
        figures.append(
            Figure(
                f"resume after SIG{name} (stopped in epoch {stop['epoch'] + 1}, after batch {stop['batch'] + 1})",
                f"<= {TARGET_EPOCHS:g} epoch",
                f"{epochs_redone:.2f} epochs ({batches} batches) redone",
                epochs_redone <= TARGET_EPOCHS,
                epochs_redone,
            )
        )
        extra = median([r["extra_s"] for r in mine])
        restart = median([r["restart_to_first_batch_s"] for r in mine if r["restart_to_first_batch_s"]])
        redone_s = median([r["redone_batches_s"] for r in mine])
        stopping = median([r["signal_to_exit_s"] for r in mine])
        figures.append(
            Figure(
                "  wall time lost: stopping + restart + redone batches",
                "-",
                f"{extra:.1f} s = {stopping:.1f} s + {restart:.1f} s + {redone_s:.1f} s",
                None,
                extra,
            )
        )
        resumed = mine[0]["resumed_from"]
        figures.append(
            Figure(
                "  resumed from",
                "-",
                Path(resumed).name if resumed else "none (started over)",
                None,
            )
        )
    figures.append(
        Figure("  uninterrupted reference run", "-", fmt_s(median(references)), None, median(references))
    )
    # no alternating rounds here: the load log stays empty and the report says nothing about load
    details = {"reference_s": references, "runs": results}
    report("resume cost", figures, details, args.json, started, LoadLog())
    return 0


if __name__ == "__main__":
    sys.exit(main())
