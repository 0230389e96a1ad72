"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for GANs", §4.2).

Pairs of latents are interpolated (lerp in W, slerp in Z) at t and t + ε — t = 0 for the `end`
variant, t ~ U[0, 1) for `full` — the two images get the same noise, are cropped to the face region
and box-downsampled to at most 256², and the perceptual distance between them, divided by ε², is the
sample. The mean over the samples between their 1st and 99th percentiles is the metric, as in the
original; which perceptual distance is used (and how it differs from the paper's) is `lpips_distance`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import tensorflow as tf

from stylegan_exp.config import PPLConfig
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.layers import NoiseInput, lerp
from stylegan_exp.progress import progress_bar

# Two NHWC batches of 0…255 images → one distance per pair, [N].
DistanceFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# Maps 0…255 NHWC images to a list of feature maps (the perceptual network's taps).
TapsFn = Callable[[tf.Tensor], list[tf.Tensor]]

_MAX_SIZE = 256


def normalize(v: tf.Tensor) -> tf.Tensor:
    return v / tf.sqrt(tf.reduce_sum(tf.square(v), axis=-1, keepdims=True))


def slerp(a: tf.Tensor, b: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """Spherical interpolation of unit directions: the great circle from a/|a| towards b/|b| (unit length)."""
    a, b = normalize(a), normalize(b)
    d = tf.reduce_sum(a * b, axis=-1, keepdims=True)
    p = t * tf.math.acos(tf.clip_by_value(d, -1.0, 1.0))
    c = normalize(b - d * a)
    return normalize(a * tf.cos(p) + c * tf.sin(p))


def face_region(images: tf.Tensor, crop: bool) -> tf.Tensor:
    """The original's crop (rows 3/8…7/8, columns 2/8…6/8 — of each side on a rectangle), then a box filter
    down to at most 256² (the long side)."""
    if crop:
        ch, cw = images.shape[1] // 8, images.shape[2] // 8
        images = images[:, 3 * ch:7 * ch, 2 * cw:6 * cw, :]
    size = max(images.shape[1:3])
    if size > _MAX_SIZE:
        f = size // _MAX_SIZE
        n, h, w, ch = images.shape
        images = tf.reduce_mean(tf.reshape(images, [n, h // f, f, w // f, f, ch]), axis=[2, 4])
    return images


def lpips_distance(taps: TapsFn, eps: float = 1e-10) -> DistanceFn:
    """LPIPS' form (Zhang et al. 2018) with uniform channel weights: at every tap, unit-normalise each
    pixel's feature vector, square the difference, sum it over channels, average it over the map; sum
    the taps. The published LPIPS also weights channels by learned `lin` layers on torchvision's VGG16."""

    def distance(images0: tf.Tensor, images1: tf.Tensor) -> tf.Tensor:
        total = 0.0
        for f0, f1 in zip(taps(images0), taps(images1), strict=True):
            n0 = f0 / (tf.sqrt(tf.reduce_sum(tf.square(f0), axis=-1, keepdims=True)) + eps)
            n1 = f1 / (tf.sqrt(tf.reduce_sum(tf.square(f1), axis=-1, keepdims=True)) + eps)
            total += tf.reduce_mean(tf.reduce_sum(tf.square(n0 - n1), axis=-1), axis=[1, 2])
        return total

    return distance


def trimmed_mean(samples: np.ndarray) -> float:
    """Mean of the samples between the 1st ('lower') and 99th ('higher') percentiles, both included."""
    lo = np.percentile(samples, 1, method="lower")
    hi = np.percentile(samples, 99, method="higher")
    return float(np.mean(samples[(samples >= lo) & (samples <= hi)]))


def endpoints(map_fn: Callable[[tf.Tensor], tf.Tensor], z0: tf.Tensor, z1: tf.Tensor, t: tf.Tensor,
              epsilon: float, space: str) -> tuple[tf.Tensor, tf.Tensor]:
    """The dlatents at t and t + ε on the path from z0 to z1: lerp of the mapped w, or slerp in z."""
    if space == "w":
        w0, w1 = map_fn(z0), map_fn(z1)
        tw = tf.reshape(t, [-1] + [1] * (len(w0.shape) - 1))
        return lerp(w0, w1, tw), lerp(w0, w1, tw + epsilon)
    return map_fn(slerp(z0, z1, t[:, None])), map_fn(slerp(z0, z1, t[:, None] + epsilon))


def path_samples(map_fn: Callable[[tf.Tensor], tf.Tensor], synth_fn: Callable[[tf.Tensor], tf.Tensor],
                 distance: DistanceFn, latent_size: int, cfg: PPLConfig, seed: int,
                 before_batch: Callable[[np.random.RandomState], None] | None = None) -> np.ndarray:
    """`cfg.num_samples` distances / ε²; `before_batch(rng)` runs before each minibatch (noise draws)."""
    rng = np.random.RandomState(seed)
    out = []
    bar = progress_bar(total=cfg.num_samples, desc=f"ppl_{cfg.space}{cfg.sampling}", unit="pair", leave=False)
    for start in range(0, cfg.num_samples, cfg.minibatch):
        n = min(cfg.minibatch, cfg.num_samples - start)
        z = tf.constant(rng.randn(2 * n, latent_size).astype(np.float32))
        t = rng.uniform(0.0, 1.0, n) if cfg.sampling == "full" else np.zeros(n)
        if before_batch is not None:
            before_batch(rng)
        e0, e1 = endpoints(map_fn, z[0::2], z[1::2], tf.constant(t, tf.float32), cfg.epsilon, cfg.space)
        images = synth_fn(tf.concat([e0, e1], axis=0))
        pixels = face_region((tf.cast(images, tf.float32) + 1.0) * 127.5, cfg.crop)
        out.append(np.asarray(distance(pixels[:n], pixels[n:]), np.float64) / cfg.epsilon**2)
        bar.update(n)
    bar.close()
    return np.concatenate(out)


@contextmanager
def fresh_noise(Gs: Generator) -> Iterator[Callable[[np.random.RandomState], None]]:
    """A function that redraws every noise map of Gs (one map per layer, shared by the minibatch, as the
    original re-initialises its noise variables); the snapshot's own noise maps come back afterwards."""
    maps = [m.noise for m in Gs.synthesis._flatten(predicate=lambda m: isinstance(m, NoiseInput))]
    saved = [v.numpy() for v in maps]

    def redraw(rng: np.random.RandomState) -> None:
        for v in maps:
            v.assign(rng.randn(*v.shape).astype(np.float32))

    try:
        yield redraw
    finally:
        for v, value in zip(maps, saved, strict=True):
            v.assign(value)


def min_size(crop: bool) -> int:
    """Images smaller than this leave nothing for VGG16's fifth block after the crop."""
    return 32 if crop else 16


def perceptual_path_length(Gs: Generator, distance: DistanceFn, cfg: PPLConfig, seed: int) -> float:
    """ppl_<space><sampling> of Gs: untruncated, noise shared within each pair and fresh per minibatch."""
    level = Gs.resolution_log2
    with fresh_noise(Gs) as redraw:
        samples = path_samples(Gs.map, lambda w: Gs.synthesis(w, level, randomize_noise=False), distance,
                               Gs.latent_size, cfg, seed, redraw)
    return trimmed_mean(samples)
