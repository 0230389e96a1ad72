"""Fréchet Inception distance between two sets of features, in pure NumPy."""

from __future__ import annotations

import numpy as np


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of [N, D] features, in float64 for a stable square root."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need [N >= 2, D] features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 − mu2|² + tr(S1 + S2 − 2 (S1 S2)^½) between two Gaussians.

    tr (S1 S2)^½ is the sum of the square roots of the eigenvalues of S1^½ S2 S1^½, which is symmetric
    positive semi-definite: no general matrix square root, no imaginary parts to discard, and singular
    covariances (fewer images than feature dimensions) stay finite.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, "
                         f"{sigma2.shape}")
    root = _sqrt_psd(sigma1)
    product = root @ sigma2 @ root
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two [N, D] feature sets."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))
