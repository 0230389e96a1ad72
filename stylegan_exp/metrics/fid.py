"""Fréchet Inception distance: the distance in pure NumPy, the feature network injectable.

The real path uses keras' Inception-v3 (ImageNet weights, 2048-d average-pool features at 299×299);
tests inject a tiny network instead, so nothing is downloaded there. The statistics of the reals only
change with the dataset, so they are cached as .npz, keyed by everything that determines them.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from stylegan_exp.atomic import atomic_open
from stylegan_exp.data.records import INFO_FILE
from stylegan_exp.metrics import MetricError

# NHWC float images in [-1, 1] → [N, D] features.
FeatureFn = Callable[[np.ndarray], np.ndarray]

INCEPTION_SIZE = 299
INCEPTION_NAME = "inception_v3"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
               "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5")
_WEIGHTS_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"


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


@functools.cache
def _inception_model():
    import keras

    try:
        weights = keras.utils.get_file(Path(WEIGHTS_URL).name, WEIGHTS_URL, cache_subdir="models",
                                       file_hash=_WEIGHTS_MD5)
    except Exception as e:  # keras wraps every network/IO failure in a bare Exception
        reason = " ".join(str(e).split()) or type(e).__name__
        raise MetricError(f"FID needs the Inception-v3 ImageNet weights from {WEIGHTS_URL}: {reason}") from e
    return keras.applications.InceptionV3(include_top=False, pooling="avg", weights=weights,
                                          input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))


def inception_features(batch_size: int) -> FeatureFn:
    """Inception-v3 pool features; downloads the weights into ~/.keras/models on first use.

    Raises MetricError (one line, with the URL) when the weights cannot be had.
    """
    import keras
    import tensorflow as tf

    model = _inception_model()

    def features(images: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = tf.convert_to_tensor(images[i:i + batch_size], tf.float32)
            if x.shape[-1] == 1:
                x = tf.image.grayscale_to_rgb(x)
            x = tf.image.resize(x, (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
            x = keras.applications.inception_v3.preprocess_input((x + 1.0) * 127.5)
            out.append(np.asarray(model(x, training=False)))
        return np.concatenate(out)

    return features


def statistics_path(cache_dir: Path, data_dir: Path, resolution: int, num_images: int,
                    feature_name: str = INCEPTION_NAME) -> Path:
    """Cache file of the reals' statistics: a new dataset.json (repacked data) means a new file."""
    data_dir = Path(data_dir).resolve()
    info_sha = hashlib.sha256((data_dir / INFO_FILE).read_bytes()).hexdigest()
    key = hashlib.sha256(f"{data_dir}|{info_sha}|{resolution}|{num_images}|{feature_name}".encode())
    return Path(cache_dir) / f"fid-{data_dir.name}-{resolution}px-{num_images}-{key.hexdigest()[:16]}.npz"


def _features(batches: Iterable[np.ndarray], extractor: FeatureFn) -> np.ndarray:
    return np.concatenate([extractor(np.asarray(b, np.float32)) for b in batches])


def real_statistics(path: Path, reals: Callable[[], Iterable[np.ndarray]],
                    extractor: FeatureFn) -> tuple[np.ndarray, np.ndarray]:
    """Load the cached statistics at `path`, or compute them from `reals()` and write them atomically."""
    if path.exists():
        with np.load(path) as cached:
            return cached["mu"], cached["sigma"]
    mu, sigma = feature_statistics(_features(reals(), extractor))
    with atomic_open(path) as f:
        np.savez(f, mu=mu, sigma=sigma)
    return mu, sigma


def fid(real_stats: tuple[np.ndarray, np.ndarray], fakes: Iterable[np.ndarray],
        extractor: FeatureFn) -> float:
    """FID of generated batches against precomputed real statistics."""
    return frechet_distance(*real_stats, *feature_statistics(_features(fakes, extractor)))
