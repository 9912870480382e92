"""GPU slots: every running job gets devices of its own through ``CUDA_VISIBLE_DEVICES``.

``snakemake --cores N --resources gpu=K`` runs at most K jobs that ask for a GPU at once, but
Snakemake only counts: it does not tell a job which device is free. A job claims its devices here,
before torch touches CUDA, by taking an exclusive ``flock`` on one file per device in a lock folder
that every job of the machine shares. The kernel drops a lock when its process ends, however it
ends, so a killed job frees its device at once and there is no state to clean up.

Lock names carry the host and, inside a SLURM allocation, the job id: device numbers are only
meaningful within one machine and one allocation (SLURM renumbers the devices it hands out), so a
lock folder on a shared file system stays correct, and jobs of different allocations never wait
for each other. A SLURM job that asks for exactly the GPUs it was given simply claims them all.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_DIR_ENV = "MML_GPU_LOCK_DIR"
_NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


class GpuSlotError(RuntimeError):
    """A job asks for more GPUs than the machine shows; the message says what to change."""


def visible_devices(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The devices jobs may share: ``CUDA_VISIBLE_DEVICES`` when set, else every NVIDIA GPU.

    The driver lists one folder per GPU under ``/proc/driver/nvidia/gpus``; reading it needs
    neither torch nor a CUDA context. Entries of ``CUDA_VISIBLE_DEVICES`` after an invalid one
    (``-1``) are ignored, as CUDA does.
    """
    if "CUDA_VISIBLE_DEVICES" in environ:
        devices = []
        for entry in environ["CUDA_VISIBLE_DEVICES"].split(","):
            entry = entry.strip()
            if not entry or entry.startswith("-"):
                break
            devices.append(entry)
        return devices
    return [str(i) for i in range(len(list(_NVIDIA_GPUS.iterdir())))] if _NVIDIA_GPUS.is_dir() else []


def default_lock_dir() -> Path:
    """``$MML_GPU_LOCK_DIR``, else a folder in the machine's temp dir shared by all users."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "mml_core-gpu-slots")


def _lock_namespace() -> str:
    job = os.environ.get("SLURM_JOB_ID")
    return socket.gethostname() + (f"-slurm{job}" if job else "")


def _make_lock_dir(lock_dir: Path) -> None:
    if not lock_dir.is_dir():
        lock_dir.mkdir(parents=True, exist_ok=True)
        # sticky and world-writable like /tmp: other users' jobs must lock in the same folder
        with contextlib.suppress(PermissionError):
            lock_dir.chmod(0o1777)


def _try_lock(path: Path) -> int | None:
    # read-only is enough for flock, so lock files other users created work too
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


def _lock_free_devices(pool: Sequence[str], count: int, lock_dir: Path) -> dict[str, int]:
    """Locks (device -> file descriptor) on ``count`` devices of ``pool`` no one holds, else none.

    All or nothing: holding some devices while waiting for more could deadlock two jobs.
    """
    namespace = _lock_namespace()
    held: dict[str, int] = {}
    for device in pool:
        fd = _try_lock(lock_dir / f"{namespace}-gpu{device}.lock")
        if fd is not None:
            held[device] = fd
            if len(held) == count:
                return held
    for fd in held.values():
        os.close(fd)
    return {}


def _check_cuda_untouched() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise GpuSlotError(
            "CUDA was initialised before the job claimed its GPUs, so CUDA_VISIBLE_DEVICES cannot take "
            "effect any more. Claim the devices (mml_core.jobs.gpus.claim_gpus) before the first CUDA call."
        )


@contextlib.contextmanager
def claim_gpus(
    count: int,
    devices: Sequence[str] | None = None,
    lock_dir: Path | None = None,
    poll_s: float = 1.0,
) -> Iterator[list[str]]:
    """Hold ``count`` devices no other job holds and show only them to CUDA inside the block.

    Waits while all devices are taken (more GPU jobs than devices, e.g. another snakemake run on
    the same machine). ``count <= 0`` claims nothing and leaves the environment alone.

    :param count: GPUs the job asks for (its ``resources.<command>.gpu``)
    :param devices: devices to choose from; default :func:`visible_devices`
    :param lock_dir: folder of the lock files; default :func:`default_lock_dir`
    :param poll_s: seconds between attempts while waiting
    :return: the claimed device ids, also set as ``CUDA_VISIBLE_DEVICES``
    """
    if count <= 0:
        yield []
        return
    pool = list(devices) if devices is not None else visible_devices()
    if count > len(pool):
        shown = os.environ.get("CUDA_VISIBLE_DEVICES")
        source = (
            f"CUDA_VISIBLE_DEVICES={shown!r}" if shown is not None else f"the NVIDIA driver ({_NVIDIA_GPUS})"
        )
        raise GpuSlotError(
            f"The step asks for {count} GPU(s) but {source} shows {len(pool)}. Lower resources.<command>.gpu "
            "in the experiment config (0 runs the step on the CPU) or run on a machine with more GPUs."
        )
    _check_cuda_untouched()
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    _make_lock_dir(lock_dir)
    waiting_since = None
    while not (held := _lock_free_devices(pool, count, lock_dir)):
        if waiting_since is None:
            waiting_since = time.monotonic()
            logger.info(
                "Waiting for %d free GPU(s): devices %s are held by other jobs (locks in %s).",
                count,
                ",".join(pool),
                lock_dir,
            )
        time.sleep(poll_s)
    if waiting_since is not None:
        logger.info("Waited %.0f s for a free GPU.", time.monotonic() - waiting_since)
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(held)
    logger.info("Claimed GPU(s) %s (CUDA_VISIBLE_DEVICES).", os.environ["CUDA_VISIBLE_DEVICES"])
    try:
        yield list(held)
    finally:
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
        for fd in held.values():
            os.close(fd)
