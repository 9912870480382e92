"""Generated image tasks on disk for the image benchmarks (``image_throughput.py``, ``memory.py``).

``image_task`` writes ``n`` RGB PNGs of 128x128 px in 3 classes as an MML task (through the
importers' ``write_task``: PNGs under ``RAW/DSET_<name>/<name>/``, stratified folds, statistics,
the task file written last), once, outside any timing; a later run with the same data folder
reuses it (a marker records the generator's settings). Image ``i`` depends only on (seed, i), so
the 10,000-image task's first 5,000 images are those of the 5,000-image task.

Each class has its own colour and stripe texture (orientation and frequency), with per-image
random phase, colour jitter and pixel noise: the files decode as real photographs do (PNG with
little to compress, ~40 KiB each), not as flat colour fields, and a model can learn the classes.
``task_config`` gives the config keys both benchmarks train with (resnet18, on-the-fly Resize to
112 px, an albumentations augmentation, 2 DataLoader workers, batch 64).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("benchmarks")

SIZE = 128
CLASSES = ("alpha", "beta", "gamma")
SEED = 0
GENERATOR_VERSION = 1  # bump when the images change, so cached tasks are rewritten

# the training step both image benchmarks run (see the scripts' docstrings)
ARCH = "resnet18"
PREPROCESSING = {"id": "size112", "pipeline": [{"name": "Resize", "height": 112, "width": 112}]}
AUGMENTATION = {
    "backend": "albumentations",
    "pipeline": [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "RandomBrightnessContrast", "p": 0.5},
        {"name": "Affine", "rotate": [-10, 10], "p": 0.5},
    ],
}
BATCH_SIZE = 64
NUM_WORKERS = 2
LR = 0.003  # config/config.yaml's optimizer.lr (Adam), stated here for the plain loop


def image(index: int, label: int, size: int = SIZE):
    """Image ``index`` of class ``label`` as a HxWx3 uint8 array (depends only on SEED, index, label)."""
    import numpy as np

    rng = np.random.default_rng([SEED, index])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = np.pi * (label / len(CLASSES) + rng.uniform(-0.08, 0.08))
    frequency = (4 + 5 * label) * rng.uniform(0.85, 1.15)
    stripes = np.sin(
        2 * np.pi * frequency * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi)
    )
    base = np.array([[200, 70, 60], [60, 170, 80], [70, 90, 200]][label], dtype=np.float32)
    colour = base + rng.normal(0, 20, size=3)
    pixels = colour * (0.65 + 0.35 * stripes[..., None]) + rng.normal(0, 18, size=(size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def image_task(data_dir: Path, n: int) -> str:
    """The task of ``n`` generated images in ``data_dir`` (written once, not timed); its name."""
    from PIL import Image

    from mml_core.tasks.importers import SourceImage, write_task

    name = f"img{SIZE}_{n}"
    marker = Path(data_dir) / f".{name}.json"
    settings = {"n": n, "size": SIZE, "classes": list(CLASSES), "seed": SEED, "version": GENERATOR_VERSION}
    task_file = Path(data_dir) / "RAW" / f"DSET_{name}" / f"TASK_{name}.json"
    if marker.is_file() and task_file.is_file() and json.loads(marker.read_text()) == settings:
        logger.info("Reusing the generated task %s (%d images) in %s", name, n, data_dir)
        return name
    logger.info(
        "Writing %d PNGs of %dx%d px as task %s to %s (once, not timed)", n, SIZE, SIZE, name, data_dir
    )
    started = time.perf_counter()
    labels = [i % len(CLASSES) for i in range(n)]
    train = [
        SourceImage(
            f"{CLASSES[label]}/{i:05d}", label, lambda i=i, label=label: Image.fromarray(image(i, label))
        )
        for i, label in enumerate(labels)
    ]
    quiet = logging.getLogger("mml_core")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        write_task(
            Path(data_dir), name, name, dict(enumerate(CLASSES)), train, [], n_folds=5, seed=SEED,
            source="benchmarks/bench_images.py", overwrite=True,
        )  # fmt: skip
    finally:
        quiet.setLevel(level)
    marker.write_text(json.dumps(settings))
    logger.info("Task %s written in %.0f s", name, time.perf_counter() - started)
    return name


def data_folder(args: Any, root: Path) -> Path:
    """Where the generated tasks live: ``--data``, else ``--workdir/image-data`` (kept and reused
    by later runs), else ``root/data`` (the run's temporary folder)."""
    if getattr(args, "data", None) is not None:
        path = args.data
    elif args.workdir is not None:
        path = args.workdir / "image-data"
    else:
        path = root / "data"
    path = Path(path).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def task_config(
    proj: str,
    data: Path,
    task: str,
    batches: int,
    caching: bool = False,
    callbacks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config overrides of one training step on ``task``: ``batches`` training batches (one
    epoch), one validation batch (train_fold needs a validation loss), no cross-validation."""
    return {
        "proj": proj,
        "data_dir": str(data),
        "task_list": [task],
        "pivot": {"name": task},
        "mode": {"cv": False, "subroutines": ["train"]},
        "arch": {"name": ARCH, "pretrained": False},
        "preprocessing": PREPROCESSING,
        "augmentations": {"cpu": AUGMENTATION},
        "sampling": {
            "batch_size": BATCH_SIZE,
            "num_workers": NUM_WORKERS,
            "enable_caching": caching,
            "cache_max_size": 10**9,
        },
        "trainer": {"max_epochs": 1, "limit_train_batches": batches, "limit_val_batches": 1},
        "cbs": callbacks or {},
    }


def job_config_file(path: Path, overrides: dict[str, Any]) -> tuple[Path, str]:
    """Validate ``overrides`` on top of config/config.yaml and write the job config file that
    planning would write; the file and the name of the step that trains fold 0 of the pivot."""
    from omegaconf import OmegaConf

    from mml_core.config import load_config
    from mml_core.schedulers.steps import step_name

    cfg = load_config(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True))
    return path, step_name("train_fold", [overrides["pivot"]["name"], 0])
