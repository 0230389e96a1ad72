"""Renaming an original network's variables to ours: a table per network, checked against our shapes."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from stylegan_exp.legacy.pickles import LegacyImportError, LegacyNetwork
from stylegan_exp.snapshot import describe_mismatch, shorten

Transform = Callable[[np.ndarray], np.ndarray]
Table = dict[str, tuple[str, Transform]]  # original variable name → (our variable path, transform)


def same(x: np.ndarray) -> np.ndarray:
    return x


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))


def dense0_rows_nhwc(w: np.ndarray) -> np.ndarray:
    """D's 4x4/Dense0 weight: rows in NCHW flatten order (c, h, w) → our NHWC order (h, w, c)."""
    fmaps = w.shape[0] // 16
    return w.reshape(fmaps, 4, 4, -1).transpose(1, 2, 0, 3).reshape(w.shape)


def convert_network(what: str, net: LegacyNetwork, table: Table, expected: dict[str, tuple[int, ...]],
                    ignored: set[str]) -> dict[str, np.ndarray]:
    """Rename and reshape one network's variables, naming any unknown, missing, mis-shaped or unfed one."""
    src = {k: v for k, v in net.all_variables().items() if k not in ignored}
    problems = describe_mismatch(dict.fromkeys(src, ()), dict.fromkeys(table, ()))
    if problems:
        raise LegacyImportError(f"{what}: {problems}")
    out: dict[str, np.ndarray] = {}
    wrong = []
    for name, (path, fn) in table.items():
        value = np.asarray(fn(np.asarray(src[name], dtype=np.float32)), dtype=np.float32)
        if path not in expected:
            raise LegacyImportError(f"{what}: {name} maps to {path}, which our network does not have")
        if tuple(value.shape) != expected[path]:
            wrong.append(f"{name} {tuple(src[name].shape)}")
        out[path] = value
    if wrong:
        raise LegacyImportError(f"{what}: shape mismatch for the inferred model: {shorten(wrong)}")
    left = sorted(set(expected) - set(out))
    if left:
        raise LegacyImportError(f"{what}: no source for our variables {shorten(left)}")
    return out


def times_sqrt2(b: np.ndarray) -> np.ndarray:
    """A stylegan2-ada label mapping bias: the original's lrelu(x + b)·√2 is our lrelu(√2·x + √2·b)."""
    return b * np.float32(math.sqrt(2.0))
