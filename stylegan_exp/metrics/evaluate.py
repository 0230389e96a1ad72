"""One entry point for the training loop and sample.py: a generator's metrics against its dataset."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.config import MetricsConfig
from stylegan_exp.data.records import load_info, make_dataset
from stylegan_exp.metrics import fid as fid_lib
from stylegan_exp.metrics.swd import SWD
from stylegan_exp.nets.generator import Generator

log = logging.getLogger(__name__)

METRICS = ("fid", "swd")
_SHUFFLE_BYTES = 2**30  # bound on the decoded images held by the shuffle buffer that picks the reals


def real_batches(data_dir: Path, resolution: int, num_images: int, batch_size: int,
                 seed: int = 0) -> Iterator[np.ndarray]:
    """The first `num_images` reals of a seeded shuffle (the same subset every time), NHWC in [-1, 1]."""
    info = load_info(data_dir)
    buffer = max(1, min(info.count, _SHUFFLE_BYTES // (resolution * resolution * info.channels)))
    ds = make_dataset(data_dir, resolution, batch_size, seed=seed, shuffle_buffer=buffer, cache=False)
    done = 0
    for batch in ds:
        take = min(batch_size, num_images - done)
        yield batch.numpy()[:take]
        done += take
        if done >= num_images:
            return


def fake_batches(Gs: Generator, num_images: int, batch_size: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Full-resolution, untruncated samples from fixed latents, NHWC clipped to [-1, 1]."""
    rng = np.random.RandomState(seed)
    for i in range(0, num_images, batch_size):
        z = rng.randn(min(batch_size, num_images - i), Gs.latent_size).astype(np.float32)
        yield np.clip(Gs(tf.constant(z)).numpy(), -1.0, 1.0)


def evaluate(Gs: Generator, data_dir: Path, resolution: int, cfg: MetricsConfig, cache_dir: Path, *,
             fid_extractor: tuple[str, fid_lib.FeatureFn] | None = None) -> dict[str, float]:
    """The metrics in `cfg.names` as {"metrics/fid": …, "metrics/swd_<res>": …, "metrics/swd_mean": …}.

    Reals and fakes are equally many: num_images, or the dataset size if smaller (SWD compares sorted
    sets one to one). `fid_extractor` = (cache name, feature function) replaces Inception-v3, for tests.
    Raises MetricError when FID cannot get its network weights.
    """
    unknown = sorted(set(cfg.names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown} in metrics.names; known: {list(METRICS)}")
    if not cfg.names:
        return {}
    data_dir, cache_dir = Path(data_dir), Path(cache_dir).expanduser()
    count = load_info(data_dir).count
    n = min(cfg.num_images, count)
    if n < cfg.num_images:
        log.warning("metrics on %d images: the dataset %s has fewer than metrics.num_images=%d",
                    n, data_dir, cfg.num_images)
    if "fid" in cfg.names and fid_extractor is None:  # before any other work: missing weights fail fast
        fid_extractor = (fid_lib.INCEPTION_NAME, fid_lib.inception_features(cfg.fid.batch_size))
    start = time.time()
    results: dict[str, float] = {}
    if "swd" in cfg.names:
        swd = SWD(resolution, cfg.swd, cfg.seed)
        real = swd.descriptors(real_batches(data_dir, resolution, n, cfg.minibatch, cfg.seed))
        fake = swd.descriptors(fake_batches(Gs, n, cfg.minibatch, cfg.seed))
        results.update({f"metrics/{k}": v for k, v in swd.distance(real, fake).items()})
    if "fid" in cfg.names:
        feature_name, extractor = fid_extractor
        path = fid_lib.statistics_path(cache_dir, data_dir, resolution, n, feature_name)
        stats = fid_lib.real_statistics(
            path, lambda: real_batches(data_dir, resolution, n, cfg.minibatch, cfg.seed), extractor)
        results["metrics/fid"] = fid_lib.fid(stats, fake_batches(Gs, n, cfg.minibatch, cfg.seed), extractor)
    log.info("metrics on %d images in %.1fs: %s", n, time.time() - start,
             "  ".join(f"{k.removeprefix('metrics/')} {v:.4g}" for k, v in results.items()))
    return results
