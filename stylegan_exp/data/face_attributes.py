"""Read a synthetic face's hair colour and mouth back from its pixels: the yardstick for how well a
generator (conditional, or edited along a tag direction) produces the attributes it was asked for.

Both readers are fixed functions of the drawing in `synthetic.py`, nothing is trained:
- hair colour: the nearest `HAIR_PALETTE` entry to the per-channel median colour of `HAIR_REGION`, a
  band over the crown that is hair for every head position, size, hair and bangs style the sampler
  draws (the median ignores the highlight line crossing it);
- smile: the mouth area is matched (normalised cross-correlation of darkness against the skin) with each
  mouth style drawn by the synthetic renderer itself at the sampler's head sizes and sub-pixel offsets;
  the best-matching style is the face's mouth.

Measured on 200 faces drawn by the sampler (tests/test_face_attributes.py): hair colour is right for
all of them at 16², 32² and 64²; smile vs not is right for 87–92% at 32² (a smile's curve is under a pixel
there: half to 60% of smiles are found, no other mouth is taken for one) and 97–99% at 64²; at 16² it
is chance.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from stylegan_exp.data.images import resample
from stylegan_exp.data.synthetic import (
    HAIR_COLORS,
    MOUTH_STYLES,
    SUPERSAMPLE,
    draw_mouth,
    hair_rgb,
)

MIN_RESOLUTION = 16
HAIR_REGION = (0.25, 0.36, 0.30, 0.70)
"""(top, bottom, left, right) as fractions of the image: hair in every face the sampler draws."""
PALETTE_RGB = np.array([hair_rgb(name) for name in HAIR_COLORS], np.float32)

_SKIN = (240, 214, 196)
_FACE_SIZES = (0.87, 1.0, 1.13)  # the sampler's range of face_size
_PHASES = (0.0, 0.5)  # sub-pixel offsets of the mouth, in output pixels
_MOUTH_Y = (0.64, 0.83)  # where a mouth centre can be, as fractions of the height
_MOUTH_X = (0.44, 0.56)
_GRAY = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class FaceAttributes:
    """Per image: hair colour (index into HAIR_COLORS), mouth style (index into MOUTH_STYLES)."""

    hair: np.ndarray
    mouth: np.ndarray

    @property
    def hair_names(self) -> list[str]:
        return [HAIR_COLORS[i] for i in self.hair]

    @property
    def smile(self) -> np.ndarray:
        return self.mouth == MOUTH_STYLES.index("smile")


def _check(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"expected square RGB images [N, R, R, 3], got shape {images.shape}")
    if images.shape[1] < MIN_RESOLUTION:
        raise ValueError(f"faces of {images.shape[1]}² are too small to read; at least {MIN_RESOLUTION}²")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return images


def _region(resolution: int, top: float, bottom: float, left: float, right: float) -> tuple[slice, slice]:
    """Rows and columns whose pixel centres lie in the fractional box."""
    def span(a: float, b: float) -> slice:
        return slice(int(np.ceil(a * resolution - 0.5)), int(np.ceil(b * resolution - 0.5)))
    return span(top, bottom), span(left, right)


def hair_colors(images: np.ndarray) -> np.ndarray:
    """Index into HAIR_COLORS of each face's hair: the palette entry nearest (RGB) to the region's median."""
    images = _check(images)
    rows, cols = _region(images.shape[1], *HAIR_REGION)
    patch = images[:, rows, cols].reshape(len(images), -1, 3).astype(np.float32)
    colour = np.median(patch, axis=1)
    return np.argmin(((colour[:, None] - PALETTE_RGB[None]) ** 2).sum(-1), axis=1)


@functools.lru_cache(maxsize=8)
def _mouth_templates(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised darkness templates [T, h, w] of every mouth style at every size and phase, and the style
    index of each; drawn by the renderer on plain skin."""
    size = resolution * SUPERSAMPLE
    h, w = max(3, round(0.1 * resolution)), max(5, round(0.14 * resolution))
    templates, styles = [], []
    for style_index, style in enumerate(MOUTH_STYLES):
        for face_size in _FACE_SIZES:
            for dy in _PHASES:
                for dx in _PHASES:
                    img = Image.new("RGB", (size, size), _SKIN)
                    draw_mouth(img, style, 0.5 + dx / resolution, 0.5 + dy / resolution, face_size)
                    dark = _darkness(resample(np.asarray(img), resolution, resolution)[None])[0]
                    cy = int(round((0.5 + 0.19 * face_size) * resolution))
                    top, left = cy - h // 2, resolution // 2 - w // 2
                    templates.append(_normalise(dark[top : top + h, left : left + w]))
                    styles.append(style_index)
    return np.stack(templates), np.asarray(styles)


def _darkness(images: np.ndarray) -> np.ndarray:
    """How much darker than the skin (the median of the mouth area) each pixel is, >= 0."""
    gray = images.astype(np.float32) @ _GRAY
    r = images.shape[1]
    rows, cols = _region(r, _MOUTH_Y[0] - 0.05, _MOUTH_Y[1] + 0.05, _MOUTH_X[0] - 0.07, _MOUTH_X[1] + 0.07)
    skin = np.median(gray[:, rows, cols].reshape(len(images), -1), axis=1)
    return np.maximum(skin[:, None, None] - gray, 0.0)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    return x / np.maximum(np.sqrt((x**2).sum(axis=(-2, -1), keepdims=True)), 1e-6)


def mouth_scores(images: np.ndarray) -> np.ndarray:
    """[N, len(MOUTH_STYLES)]: each style's best normalised cross-correlation over the mouth area."""
    images = _check(images)
    r = images.shape[1]
    templates, styles = _mouth_templates(r)
    h, w = templates.shape[1:]
    dark = _darkness(images)
    rows, cols = _region(r, *_MOUTH_Y, *_MOUTH_X)
    best = np.full((len(images), len(templates)), -np.inf, np.float32)
    for cy in range(rows.start, rows.stop):
        for cx in range(cols.start, cols.stop):
            top, left = cy - h // 2, cx - w // 2
            patch = _normalise(dark[:, top : top + h, left : left + w])
            best = np.maximum(best, np.einsum("nhw,thw->nt", patch, templates))
    out = np.full((len(images), len(MOUTH_STYLES)), -np.inf, np.float32)
    for s in range(len(MOUTH_STYLES)):
        out[:, s] = best[:, styles == s].max(axis=1)
    return out


def smile_margins(images: np.ndarray) -> np.ndarray:
    """How much better the smile matches than the best other mouth (> 0: classified as smiling); a
    continuous score for watching an edit move a face towards or away from a smile."""
    scores = mouth_scores(images)
    smile = MOUTH_STYLES.index("smile")
    return scores[:, smile] - np.delete(scores, smile, axis=1).max(axis=1)


def classify_faces(images: np.ndarray) -> FaceAttributes:
    """Hair colour and mouth style of uint8 faces [N, R, R, 3] (or one [R, R, 3]), R >= 16."""
    return FaceAttributes(hair_colors(images), np.argmax(mouth_scores(images), axis=1))
