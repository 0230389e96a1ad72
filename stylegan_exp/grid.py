"""The one grid writer: network outputs in [-1, 1] → uint8 → a contact-sheet PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stylegan_exp.data.images import save_image


def to_uint8(images: np.ndarray, drange: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Map network outputs (NHWC floats in `drange`) to displayable uint8, clipping overshoot."""
    lo, hi = drange
    scaled = (np.asarray(images, dtype=np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, grid_w: int) -> np.ndarray:
    """Tile N images row-major into a grid `grid_w` wide; missing cells stay black."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    grid_h = -(-n // grid_w)
    canvas = np.zeros((grid_h * h, grid_w * w, c), dtype=images.dtype)
    for i, image in enumerate(images):
        y, x = divmod(i, grid_w)
        canvas[y * h : (y + 1) * h, x * w : (x + 1) * w] = image
    return canvas


def save_grid(images: np.ndarray, path: str | Path, grid_w: int, *, size: int | None = None) -> Path:
    """Write network outputs as a grid PNG; `size` upscales each cell (nearest) to that short side, so grids
    stay comparable across progressive-growing levels."""
    images = to_uint8(images)
    short = min(images.shape[1:3])
    if size is not None and short < size:
        factor = size // short
        images = images.repeat(factor, axis=1).repeat(factor, axis=2)
    path = Path(path)
    save_image(make_grid(images, grid_w), path)
    return path
