"""Run every benchmark one after the other and print one table: figure, target, measured, met?

    python benchmarks/run_all.py [--quick] [--only planning throughput ...] [--markdown]

Each benchmark runs as its own process (`python benchmarks/<name>.py --json ...`), with its own
default repeats unless --quick; its output streams through. Exits 0 even when targets are missed:
benchmarks are not tests. The default run takes about 30 minutes on 2 cores (the two image
benchmarks about 15 of them; they share one folder of generated images per run).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_report import machine

logger = logging.getLogger("benchmarks")

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "job_overhead",
    "planning",
    "parallelism",
    "throughput",
    "resume_cost",
    "image_throughput",
    "memory",
    "change_detection",
)
IMAGE_BENCHMARKS = ("image_throughput", "memory")  # they take --data: the generated tasks, written once


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (a smoke run)")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    p.add_argument("--repo", type=Path, default=None, help="passed on to every benchmark")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown too (for the README)")
    p.add_argument("--json", type=Path, default=None, help="write all figures as JSON to this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    started = time.time()
    info_before = machine()
    collected: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mml-bench-all-") as tmp:
        for name in args.only:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out)]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--repo", str(args.repo)] if args.repo else []
            cmd += ["--data", str(Path(tmp) / "image-data")] if name in IMAGE_BENCHMARKS else []
            logger.info("=== %s ===", name)
            t0 = time.time()
            code = subprocess.run(cmd, check=False).returncode
            if code != 0 or not out.is_file():
                logger.error("%s failed (exit %d); its figures are missing", name, code)
                collected[name] = {
                    "figures": [
                        {
                            "name": f"{name}: FAILED (exit {code})",
                            "target": "-",
                            "measured": "-",
                            "met": False,
                        }
                    ],
                    "seconds": time.time() - t0,
                }
                continue
            collected[name] = json.loads(out.read_text())
    rows = [("figure", "target", "measured", "met?")]
    for result in collected.values():
        for f in result["figures"]:
            rows.append(
                (f["name"], f["target"], f["measured"], {True: "yes", False: "NO", None: "-"}[f["met"]])
            )
    info = machine()
    header = (
        f"{info_before['date']}, {info['cores']} cores, {info['mem_gib']} GiB, Python {info['python']}, "
        f"torch {info.get('torch')}, Lightning {info.get('pytorch-lightning')}, snakemake "
        f"{info.get('snakemake')}; load average before {info_before['loadavg']}, after {info['loadavg']}; "
        f"{(time.time() - started) / 60:.1f} min"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print("\n== all benchmarks ==\n" + header)
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if args.markdown:
        print("\n" + header + "\n")
        print("| " + " | ".join(rows[0]) + " |")
        print("|" + "|".join("---" for _ in rows[0]) + "|")
        for name, *rest in rows[1:]:
            depth = (len(name) - len(name.lstrip())) // 2  # Markdown drops the indentation of sub-rows
            cells = ["&nbsp;&nbsp;" * depth + ("↳ " if depth else "") + name.strip(), *rest]
            print("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info_before, "results": collected}, indent=2, default=str)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
