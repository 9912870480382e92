"""Atomic writes: file modes follow the umask, a full disk says so, and a failed write keeps the old file."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from mml_core.io import atomic_write, atomic_write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_mode_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "out" / "summary.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """A 256 KiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    yield mount
    # lazily: a writer that failed may still hold its file until garbage collection
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_a_full_disk_is_named_whatever_the_writer_reports(tiny_disk):
    torch = pytest.importorskip("torch")
    target = tiny_disk / "last.ckpt"
    target.write_bytes(b"previous checkpoint")
    with pytest.raises(OSError) as caught:
        # torch reports ENOSPC as "unexpected pos ..." without an errno
        atomic_write(target, lambda tmp: torch.save({"w": torch.zeros(200_000)}, tmp))
    assert caught.value.errno == errno.ENOSPC
    assert f"No space left on device while writing {target}" in str(caught.value)
    assert "Free space on the file system" in str(caught.value)
    assert target.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tiny_disk.iterdir()] == ["last.ckpt"]


def test_other_errors_pass_unchanged_and_leave_no_temp_file(tmp_path):
    def fail(tmp: Path) -> None:
        raise ValueError("not serialisable")

    with pytest.raises(ValueError, match="not serialisable"):
        atomic_write(tmp_path / "x.json", fail)
    assert list(tmp_path.iterdir()) == []
