"""MML's work unit side by side: mml-core 1.0.4 and this project, on MML's own data root.

The unit (shared/peers/mml/README.md): task sk_digits as `mml create` writes it (scikit-learn digits
as 32x32 PNGs, 2 folds), 2-fold cross-validation without nesting, timm resnet18 from scratch,
2 epochs, batch 64, fp32 on the CPU, no LR finder, train + predict + test. MML runs it in one
process (`mml train ...`, one torch thread); this project as `snakemake --cores 2` in a fresh
working directory (each job one thread, two jobs at a time). Both read the same data root; the
sides alternate (mml, ours, mml, ours ...) and the figure is the median of the paired ratios of
wall times. The 2-core limit of the unit is about 0.5x: two folds at once and no overhead.

Needs the peer installed once (not timed): `bash shared/peers/mml/run_peer.sh install create`
with PEER_DIR set (default $TMPDIR/mml-peer); pass that folder as --peer.

    python benchmarks/mml_unit.py --peer /path/to/mml-peer [--repeats 3]
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from bench_cli import parse, parser, workspace
from bench_processes import run, snakemake_cmd
from bench_report import Figure, fmt_s, report
from bench_timing import LoadLog, alternate, median, paired_ratios, spread

logger = logging.getLogger("benchmarks")

TARGET = 0.5
# run_peer.sh's overrides: the same work on both sides
MML_OVERRIDES = [
    "pivot.name=sk_digits", "mode.cv=true", "mode.nested=false", "mode.subroutines=[train,predict,test]",
    "preprocessing=none", "augmentations=none", "arch=timm", "arch.name=resnet18", "arch.pretrained=false",
    "trainer.max_epochs=2", "trainer.min_epochs=1", "trainer.precision=32", "trainer.accelerator=cpu",
    "trainer.benchmark=false", "tune.lr=false", "sampling.batch_size=64",
]  # fmt: skip
OURS = {
    "task_list": ["sk_digits"],
    "pivot": {"name": "sk_digits"},
    # MML's mode/train.yaml keeps the best epoch (store_best: true); so does this side
    "mode": {"cv": True, "nested": False, "subroutines": ["train", "predict", "test"], "store_best": True},
    "arch": {"name": "resnet18", "pretrained": False},
    "trainer": {"max_epochs": 2, "min_epochs": 1, "precision": 32, "accelerator": "cpu", "benchmark": False,
                "enable_progress_bar": False},
    "tune": {"lr": False},
    "sampling": {"batch_size": 64},
    "augmentations": {"normalization": "imagenet", "cpu": {}},
}  # fmt: skip


def mml_side(peer: Path, counter: list[int]) -> float:
    """Wall seconds of one `mml train` of the unit in the peer's environment."""
    counter[0] += 1
    env = {
        "MML_ENV_PATH": str(peer / "mml.env"),
        "HF_HUB_OFFLINE": "1",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "PATH": f"{peer / 'venv2' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(peer / "venv2"),
    }
    cmd = [str(peer / "venv2" / "bin" / "mml"), "train", f"proj=bench_unit_{os.getpid()}_{counter[0]}", *MML_OVERRIDES]
    return run(cmd, cwd=peer, env=env).seconds


def our_side(repo: Path, root: Path, config: Path, counter: list[int]) -> float:
    """Wall seconds of one `snakemake --cores 2` of the unit in a fresh working directory."""
    counter[0] += 1
    work = root / f"ours-{counter[0]}"
    work.mkdir()
    result = run(snakemake_cmd(repo, "--cores", "2", "--configfile", str(config)), cwd=work)
    summary = json.loads((work / "results/mml_unit/summary.json").read_text())
    logger.info("ours: test acc %.4f", summary["tasks"]["sk_digits"]["acc"]["mean"])
    return result.seconds


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, repeats=3)
    p.add_argument("--peer", type=Path, default=Path(os.environ.get("PEER_DIR", "/tmp/mml-peer")),
                   help="the peer folder of run_peer.sh (venv2/, data/, mml.env)")  # fmt: skip
    args = parse(p, argv)
    started = time.time()
    peer = args.peer.resolve()
    if not (peer / "venv2" / "bin" / "mml").is_file() or not (peer / "data/RAW/DSET_sk_digits").is_dir():
        logger.error("No MML peer in %s: run `PEER_DIR=%s bash shared/peers/mml/run_peer.sh install create` first.",
                     peer, peer)  # fmt: skip
        return 1
    load = LoadLog()
    with workspace(args, "mml_unit") as root:
        config = root / "mml_unit.yaml"
        config.write_text(json.dumps({"proj": "mml_unit", "data_dir": str(peer / "data"), **OURS}))  # JSON is YAML
        mml_runs, our_runs = [0], [0]
        values = alternate(
            {"mml-core 1.0.4": lambda: mml_side(peer, mml_runs),
             "this project": lambda: our_side(args.repo, root, config, our_runs)},
            args.repeats, load,
        )  # fmt: skip
    mml, ours = values["mml-core 1.0.4"], values["this project"]
    ratio = median(paired_ratios(ours, mml))
    figures = [
        Figure("MML's work unit: this project / mml-core 1.0.4", f"<= {TARGET}x", f"{ratio:.2f}x", ratio <= TARGET, ratio),
        Figure("  wall: this project (snakemake --cores 2)", "-", spread(ours) + " s", None, median(ours)),
        Figure("  wall: mml-core 1.0.4 (mml train)", "-", spread(mml) + " s", None, median(mml)),
        Figure("  2-core limit (two folds at once, no overhead)", "-", "~0.5x", None),
    ]
    report("MML's work unit", figures, {"mml_s": mml, "ours_s": ours, "median": fmt_s(median(ours))}, args.json,
           started, load)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
