"""Kernel inception distance (Bińkowski et al. 2018, "Demystifying MMD GANs"), in pure NumPy.

The unbiased estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (x·y / d + 1)³,
averaged over random subsets of equal size drawn without replacement from each set, as the StyleGAN2
and StyleGAN2-ADA `kid50k` metrics compute it; the spread over subsets is reported as its std.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² of two equally large sets: within-set sums leave out the diagonal."""
    m = len(x)
    if m < 2 or len(y) != m:
        raise ValueError(f"need two sets of the same size >= 2, got {len(x)} and {len(y)}")
    within = polynomial_kernel(x, x) + polynomial_kernel(y, y)
    between = polynomial_kernel(x, y)
    return float((within.sum() - np.trace(within)) / (m * (m - 1)) - 2.0 * between.sum() / (m * m))


def kid(real: np.ndarray, fake: np.ndarray, num_subsets: int, max_subset_size: int,
        rng: np.random.RandomState) -> tuple[float, float]:
    """(mean, std) over `num_subsets` subsets of min(len(real), len(fake), max_subset_size) features each."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(len(real), len(fake), max_subset_size)
    values = [mmd2_unbiased(fake[rng.choice(len(fake), m, replace=False)],
                            real[rng.choice(len(real), m, replace=False)]) for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))
