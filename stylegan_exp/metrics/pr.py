"""Improved precision and recall (Kynkäänniemi et al. 2019), in pure NumPy.

Each set's manifold is the union of balls around its points, each reaching to that point's k-th
nearest neighbour in the same set. Precision is the share of fakes inside the reals' manifold (are the
fakes realistic?), recall the share of reals inside the fakes' manifold (is the data covered?).
Distances are computed in blocks of `row_batch_size` rows, so memory stays rows × N floats.
"""

from __future__ import annotations

import numpy as np


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)] squared Euclidean distances (|a|² − 2 a·b + |b|², clipped at 0)."""
    d = np.sum(a * a, axis=1)[:, None] - 2.0 * (a @ b.T) + np.sum(b * b, axis=1)[None, :]
    return np.maximum(d, 0.0)


def kth_neighbour_radii(features: np.ndarray, k: int, row_batch_size: int) -> np.ndarray:
    """Squared distance from every point to its k-th nearest other point (the point itself is the 0th)."""
    if not 1 <= k < len(features):
        raise ValueError(f"k = {k} needs more than k points, got {len(features)}")
    radii = np.empty(len(features), features.dtype)
    for i in range(0, len(features), row_batch_size):
        d = squared_distances(features[i:i + row_batch_size], features)
        radii[i:i + row_batch_size] = np.partition(d, k, axis=1)[:, k]
    return radii


def inside(manifold: np.ndarray, radii: np.ndarray, points: np.ndarray, row_batch_size: int) -> np.ndarray:
    """For every point: is it within the ball of some manifold point (distance ≤ that point's radius)?"""
    hits = np.empty(len(points), bool)
    for i in range(0, len(points), row_batch_size):
        d = squared_distances(points[i:i + row_batch_size], manifold)
        hits[i:i + row_batch_size] = np.any(d <= radii[None, :], axis=1)
    return hits


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int, row_batch_size: int) -> tuple[float, float]:
    real, fake = np.asarray(real, np.float32), np.asarray(fake, np.float32)
    precision = inside(real, kth_neighbour_radii(real, k, row_batch_size), fake, row_batch_size).mean()
    recall = inside(fake, kth_neighbour_radii(fake, k, row_batch_size), real, row_batch_size).mean()
    return float(precision), float(recall)
