"""A linear probe (L2-regularised logistic regression) and the W direction it points to: pure NumPy, so a
tag direction needs no extra dependency and every step can be tested on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearProbe:
    """logit(x) = ((x − mean) / scale) · weights + bias."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) / self.scale) @ self.weights + self.bias

    def probability(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    def balanced_accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        """The mean of the accuracies on images with and without the tag: 0.5 is chance however rare it is."""
        y = np.asarray(y, bool)
        right = (self.logits(x) > 0) == y
        return float((right[y].mean() + right[~y].mean()) / 2)


def fit_probe(x: np.ndarray, y: np.ndarray, *, l2: float = 1e-2, steps: int = 500) -> LinearProbe:
    """Logistic regression on standardised features, both classes weighted equally (a rare tag is not
    learnt as "never"), by accelerated gradient descent: the loss is convex, so a step of 1/Lipschitz
    converges from zero without tuning; features need not be fewer than samples."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-8, x.std(axis=0), 1.0)
    z = np.concatenate([(x - mean) / scale, np.ones((len(x), 1))], axis=1)  # last column: the bias
    n = len(z)
    weight = np.where(y > 0.5, n / (2 * max(y.sum(), 1)), n / (2 * max(n - y.sum(), 1)))
    v = np.ones(z.shape[1]) / np.sqrt(z.shape[1])
    for _ in range(30):  # power iteration: the largest eigenvalue of zᵀz
        v = z.T @ (z @ v)
        v /= np.linalg.norm(v)
    step = 1.0 / (weight.max() * np.linalg.norm(z @ v) ** 2 / (4 * n) + l2)
    theta = previous = np.zeros(z.shape[1])
    for k in range(1, steps + 1):
        look = theta + (k - 1) / (k + 2) * (theta - previous)
        p = 1.0 / (1.0 + np.exp(-(z @ look)))
        grad = z.T @ (weight * (p - y)) / n + l2 * np.concatenate([look[:-1], [0.0]])
        previous, theta = theta, look - step * grad
    return LinearProbe(mean, scale, theta[:-1], float(theta[-1]))


def held_out_split(y: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices, `fraction` of each class held out (at least one of each)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero(np.asarray(y, bool) == cls))
        k = max(1, round(len(idx) * fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def top_bottom_direction(w: np.ndarray, scores: np.ndarray, fraction: float) -> np.ndarray:
    """Mean w of the highest-scored `fraction` minus that of the lowest-scored: strength 1 takes a typical
    face without the tag to a typical face with it."""
    k = max(1, round(len(scores) * fraction))
    order = np.argsort(scores, kind="stable")
    return w[order[-k:]].mean(axis=0) - w[order[:k]].mean(axis=0)
