"""The one atomic writer: a temp file (or folder) beside the target, renamed into place when complete.

A crash or kill at any moment leaves either the old file or the new one, never a half-written file;
a folder appears whole or not at all.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block finishes without an exception."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


class FolderExistsError(FileExistsError):
    """The target of atomic_dir is a file or a folder with something in it."""


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside `path` that becomes `path` when the block finishes (an empty `path`
    is replaced) and vanishes on any exception. Temp folders that killed earlier attempts left
    behind are removed first, so a rerun after a kill at any moment starts clean."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()  # Not mkdtemp (0700): the folder gets the usual umask permissions.
    try:
        yield tmp
        try:
            os.rename(tmp, path)  # Atomic; replaces an empty folder, fails on a file or a non-empty one.
        except OSError as exc:
            raise FolderExistsError(f"cannot move {tmp.name} to {path} ({exc.strerror})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

