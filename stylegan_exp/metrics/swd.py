"""Sliced Wasserstein distance on Laplacian pyramids (Karras et al. 2018, "Progressive Growing of GANs").

Each image is split into a Laplacian pyramid down to `min_resolution`; at every level, 7×7 patches at
random positions become descriptors, normalised per channel over the whole set, and the two sets of
descriptors are compared along random unit directions, where the 1-D Wasserstein distance is just the
mean gap between sorted projections. Reported ×1e3 per level and as their mean. Pure NumPy and needs
no downloaded weights, so it works on every machine.

Memory grows as images × nhoods_per_image × nhood_size² × channels floats per level (≈0.6 GB for the
paper's 8192 RGB images per level and set): lower `num_images` on small machines.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stylegan_exp.config import SWDConfig

# Binomial 5-tap filter: the separable form of the 5×5 Gaussian used by cv2.pyrDown/pyrUp.
_TAPS = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0
_DIR_CHUNK = 32  # directions projected at once: bounds the (descriptors × directions) buffers


def swd_resolutions(resolution: int, min_resolution: int = 16) -> list[int]:
    """The pyramid levels' resolutions, finest first: resolution, resolution/2, … ≥ min_resolution."""
    if resolution < min_resolution:
        raise ValueError(f"SWD needs images of at least {min_resolution}px (swd.min_resolution), "
                         f"got {resolution}px")
    levels = []
    while resolution >= min_resolution:
        levels.append(resolution)
        resolution //= 2
    return levels


def _filter(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable filtering of NHWC images over H and W with mirrored borders (no edge repeat)."""
    r = len(taps) // 2
    h, w = x.shape[1:3]
    x = np.pad(x, ((0, 0), (r, r), (0, 0), (0, 0)), mode="reflect")
    x = sum(t * x[:, i:i + h] for i, t in enumerate(taps))
    x = np.pad(x, ((0, 0), (0, 0), (r, r), (0, 0)), mode="reflect")
    return sum(t * x[:, :, i:i + w] for i, t in enumerate(taps))


def pyr_down(images: np.ndarray) -> np.ndarray:
    """Gaussian blur, then every second pixel: NHWC → half the size."""
    return _filter(images, _TAPS)[:, ::2, ::2]


def pyr_up(images: np.ndarray) -> np.ndarray:
    """Zero-insertion upsampling with the blur ×4 (×2 per axis) to keep the brightness."""
    n, h, w, c = images.shape
    up = np.zeros((n, h * 2, w * 2, c), images.dtype)
    up[:, ::2, ::2] = images
    return _filter(up, _TAPS * 2.0)


def laplacian_pyramid(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Band-pass levels, finest first; the last level is the low-pass residual."""
    pyramid = [np.asarray(images, np.float32)]
    for _ in range(1, num_levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
    return pyramid


def patch_descriptors(level: np.ndarray, nhood_size: int, per_image: int,
                      rng: np.random.RandomState) -> np.ndarray:
    """`per_image` random nhood_size² patches from every NHWC image: [N·per_image, C, k, k]."""
    n, h, w, _ = level.shape
    if min(h, w) < nhood_size:
        raise ValueError(f"{nhood_size}×{nhood_size} patches do not fit in {h}×{w} images")
    count = n * per_image
    image = np.repeat(np.arange(n), per_image)
    ys = rng.randint(0, h - nhood_size + 1, size=count)  # top-left corners
    xs = rng.randint(0, w - nhood_size + 1, size=count)
    return sliding_window_view(level, (nhood_size, nhood_size), axis=(1, 2))[image, ys, xs]


def normalize_descriptors(desc: np.ndarray) -> np.ndarray:
    """Zero mean and unit std per channel over the whole set, flattened to [M, C·k·k]."""
    flat = desc.reshape(desc.shape[0], desc.shape[1], -1)
    flat = (flat - flat.mean(axis=(0, 2), keepdims=True)) / (flat.std(axis=(0, 2), keepdims=True) + 1e-8)
    return flat.reshape(len(flat), -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, dir_repeats: int, dirs_per_repeat: int,
                       rng: np.random.RandomState) -> float:
    """Mean |sorted(a·d) − sorted(b·d)| over descriptors and dir_repeats × dirs_per_repeat unit d."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"descriptor sets must have the same [M, D] shape, got {a.shape} and {b.shape}")
    total, count = 0.0, 0
    for _ in range(dir_repeats):
        dirs = rng.randn(a.shape[1], dirs_per_repeat)
        dirs = (dirs / np.sqrt(np.sum(dirs**2, axis=0, keepdims=True))).astype(np.float32)
        for i in range(0, dirs_per_repeat, _DIR_CHUNK):
            d = dirs[:, i:i + _DIR_CHUNK]
            gap = np.abs(np.sort(a @ d, axis=0) - np.sort(b @ d, axis=0))
            total += float(gap.sum(dtype=np.float64))
            count += gap.size
    return total / count


class SWD:
    """Descriptors of one image set at a fixed resolution, and the distance between two such sets.

    Every call reseeds from `seed`, so the same images give the same descriptors and the directions
    are the same at every evaluation: numbers over a run are comparable, and a set against itself is 0.
    """

    def __init__(self, resolution: int, cfg: SWDConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.seed = seed
        self.resolutions = swd_resolutions(resolution, cfg.min_resolution)

    def descriptors(self, batches: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Normalised descriptors per pyramid level of NHWC images in [-1, 1] (quantised as 8-bit)."""
        rng = np.random.RandomState(self.seed)
        levels: list[list[np.ndarray]] = [[] for _ in self.resolutions]
        for batch in batches:
            pixels = np.round(np.clip((np.asarray(batch, np.float32) + 1.0) * 127.5, 0.0, 255.0))
            for out, level in zip(levels, laplacian_pyramid(pixels, len(self.resolutions)), strict=True):
                out.append(patch_descriptors(level, self.cfg.nhood_size, self.cfg.nhoods_per_image, rng))
        return [normalize_descriptors(np.concatenate(d)) for d in levels]

    def distance(self, real: list[np.ndarray], fake: list[np.ndarray]) -> dict[str, float]:
        """{"swd_<res>": …, "swd_mean": …}, all ×1e3 as in the paper."""
        rng = np.random.RandomState(self.seed + 1)
        dists = [1e3 * sliced_wasserstein(r, f, self.cfg.dir_repeats, self.cfg.dirs_per_repeat, rng)
                 for r, f in zip(real, fake, strict=True)]
        out = {f"swd_{res}": d for res, d in zip(self.resolutions, dists, strict=True)}
        out["swd_mean"] = float(np.mean(dists))
        return out
