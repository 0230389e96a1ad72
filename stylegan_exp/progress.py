"""The one progress bar: tqdm while both stdout and stderr are terminals, nothing otherwise.

With output going to a file or a pipe (nohup, tee, Slurm logs) a bar's carriage-return redraws land in the
middle of log lines; the log itself says what happened there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def interactive() -> bool:
    """Whether a bar can redraw in place without mixing into logged lines."""
    return _is_terminal(sys.stdout) and _is_terminal(sys.stderr)


def progress_bar(iterable: Iterable[T] | None = None, *, enabled: bool = True, **kwargs: Any) -> tqdm:
    """tqdm(iterable, **kwargs), disabled (a silent pass-through) when `enabled` is false or the output is
    not a terminal."""
    return tqdm(iterable, disable=not (enabled and interactive()), **kwargs)
