"""Command line and working folder shared by the benchmark scripts.

Every script takes the same base options (``--repeats``, ``--quick``, ``--repo``, ``--workdir``,
``--json``, ``-v``) and adds its own; ``parse`` fills in the repeats and sets up logging, and
``workspace`` gives the folder a run works in: ``--workdir/<name>`` when the files should be kept
for a look afterwards, otherwise a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

logger = logging.getLogger("benchmarks")

REPO = Path(__file__).resolve().parents[1]


def parser(description: str, repeats: int, quick_repeats: int = 1) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"alternating repeats of each side (default {repeats}, --quick: {quick_repeats})",
    )
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes: a smoke run")
    p.add_argument(
        "--repo",
        type=Path,
        default=REPO,
        help="repository whose Snakefile is run (default: this one); mml_core is imported from "
        "the active environment (set PYTHONPATH to benchmark another checkout)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the working directories here (default: a temporary folder, removed at the end)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON to this file")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.set_defaults(default_repeats=repeats, quick_repeats=quick_repeats)
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, resolve the repeats (``--quick`` or default) and set up logging."""
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = args.quick_repeats if args.quick else args.default_repeats
    args.repo = args.repo.resolve()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    return args


@contextlib.contextmanager
def workspace(args: argparse.Namespace, name: str) -> Iterator[Path]:
    """The folder the benchmark works in: ``--workdir/<name>`` (kept) or a temporary one (removed)."""
    if args.workdir is not None:
        path = (args.workdir / name).resolve()
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        yield path
        logger.info("Working files kept in %s", path)
    else:
        with tempfile.TemporaryDirectory(prefix=f"mml-bench-{name}-") as tmp:
            yield Path(tmp)
