"""GPU slot assignment without GPUs: fake device lists through CUDA_VISIBLE_DEVICES, real locks."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from mml_core.jobs import gpus
from mml_core.jobs.gpus import GpuSlotError, claim_gpus, visible_devices

# a job that claims one device, reports it, and holds it until its stdin closes
HOLDER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from mml_core.jobs.gpus import claim_gpus

    with claim_gpus(1, lock_dir=Path(sys.argv[1]), poll_s=0.05):
        print(os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
        sys.stdin.readline()
    """
)


def start_holder(lock_dir: Path, devices: str) -> subprocess.Popen:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": devices}
    env.pop("SLURM_JOB_ID", None)
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def claimed_device(proc: subprocess.Popen, timeout: float) -> str | None:
    """The device a holder printed within ``timeout`` seconds; None while it still waits."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else None


@pytest.fixture
def no_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)


def test_concurrent_jobs_get_distinct_devices_and_exiting_or_killed_jobs_free_them(tmp_path):
    holders = [start_holder(tmp_path, "0,1,2") for _ in range(3)]
    waiting = None
    try:
        devices = [claimed_device(p, timeout=30) for p in holders]
        assert sorted(devices) == ["0", "1", "2"]
        # a fourth job finds every device taken and waits ...
        waiting = start_holder(tmp_path, "0,1,2")
        assert claimed_device(waiting, timeout=2) is None
        # ... until a job is killed: the kernel drops its lock, no clean-up needed
        killed = holders[devices.index("1")]
        killed.send_signal(signal.SIGKILL)
        assert claimed_device(waiting, timeout=30) == "1"
        # a job that ends normally frees its device too
        finished = holders[devices.index("0")]
        finished.communicate("\n", timeout=30)
        assert finished.returncode == 0
        late = start_holder(tmp_path, "0,1,2")
        holders.append(late)
        assert claimed_device(late, timeout=30) == "0"
    finally:
        for proc in [*holders, *([waiting] if waiting else [])]:
            proc.kill()
            proc.wait()


def test_claim_sets_then_restores_cuda_visible_devices_and_nested_claims_differ(
    tmp_path, monkeypatch, no_slurm
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    with claim_gpus(1, lock_dir=tmp_path) as first:
        assert first == ["4"] and os.environ["CUDA_VISIBLE_DEVICES"] == "4"
        with claim_gpus(1, devices=["4", "5"], lock_dir=tmp_path) as second:
            assert second == ["5"] and os.environ["CUDA_VISIBLE_DEVICES"] == "5"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "4"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"
    with claim_gpus(2, lock_dir=tmp_path) as both:
        assert both == ["4", "5"] and os.environ["CUDA_VISIBLE_DEVICES"] == "4,5"


def test_jobs_of_different_slurm_allocations_never_share_a_lock(tmp_path, monkeypatch):
    # SLURM numbers each allocation's devices from 0: the same number is another device
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    with claim_gpus(1, devices=["0"], lock_dir=tmp_path) as first:
        monkeypatch.setenv("SLURM_JOB_ID", "8")
        with claim_gpus(1, devices=["0"], lock_dir=tmp_path) as second:
            assert first == second == ["0"]
    assert len(list(tmp_path.glob("*-slurm7-gpu0.lock"))) == 1


def test_no_gpu_asked_claims_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with claim_gpus(0, lock_dir=tmp_path / "locks") as claimed:
        assert claimed == [] and os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert not (tmp_path / "locks").exists()


@pytest.mark.parametrize(
    ("shown", "message"), [("", "CUDA_VISIBLE_DEVICES=''"), ("0", "CUDA_VISIBLE_DEVICES='0'")]
)
def test_asking_for_more_gpus_than_shown_names_the_fix(tmp_path, monkeypatch, shown, message):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", shown)
    with pytest.raises(GpuSlotError, match=r"asks for 2 GPU") as info, claim_gpus(2, lock_dir=tmp_path):
        pass
    assert message in str(info.value) and "resources.<command>.gpu" in str(info.value)


def test_visible_devices_from_cuda_variable_or_driver(tmp_path, monkeypatch):
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "0, 2,-1,3"}) == ["0", "2"]
    assert visible_devices({"CUDA_VISIBLE_DEVICES": "GPU-aa,GPU-bb"}) == ["GPU-aa", "GPU-bb"]
    for name in ("0000:17:00.0", "0000:65:00.0"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(gpus, "_NVIDIA_GPUS", tmp_path)
    assert visible_devices({}) == ["0", "1"]
    monkeypatch.setattr(gpus, "_NVIDIA_GPUS", tmp_path / "absent")
    assert visible_devices({}) == []


def test_claim_after_cuda_started_is_refused(tmp_path, monkeypatch):
    # CUDA reads CUDA_VISIBLE_DEVICES once, when it starts: a later claim could not take effect
    started_cuda = SimpleNamespace(cuda=SimpleNamespace(is_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", started_cuda)
    with pytest.raises(GpuSlotError, match="before the first CUDA call"), claim_gpus(1, ["0"], tmp_path):
        pass
