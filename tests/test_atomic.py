"""The atomic writer: normal permissions, and an exception mid-write keeps the old file and no temp file."""

import os

import pytest

from stylegan_exp.atomic import atomic_open, write_atomic


def test_written_file_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.bin", b"data")
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644


def test_failure_keeps_previous_file(tmp_path):
    target = tmp_path / "a.bin"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as f:
        f.write(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]
