"""Procedurally drawn anime-style faces: the built-in default dataset, so training needs no download.

Every face shares one layout (a roughly centred head, eyes on a fixed line, bangs over the forehead)
so a tiny GAN can learn the structure quickly, while hair colour and style, bangs, eyes, skin, mouth,
blush, clothes and background vary enough that there is something to learn. At a rectangular aspect
(`--aspect 1:2`) the face fills the top square of a portrait above shoulders and a torso (a landscape centres
it between wider background); the face parameters, and so the faces, are those of the square set.

    python -m stylegan_exp.data.synthetic OUT --count 4000 --resolution 64 --seed 0 --sheet sheet.png
"""

from __future__ import annotations

import argparse
import colorsys
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image, ImageDraw

from stylegan_exp.aspect import SQUARE, Aspect, parse_aspect
from stylegan_exp.data.dataset_format import DatasetError, LabelSpace
from stylegan_exp.data.images import resample
from stylegan_exp.data.labels import label_vector
from stylegan_exp.progress import progress_bar

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Bump whenever sampling or drawing changes, so cached datasets from older code are not reused."""

SUPERSAMPLE = 4
HAIR_STYLES = ("bob", "long", "twintails", "ponytail", "spiky")
BANGS_STYLES = ("blunt", "jagged", "swept", "parted")
MOUTH_STYLES = ("smile", "open", "small_o", "flat", "cat")

RGB = tuple[int, int, int]
Points = list[tuple[float, float]]

# Named hair colours, including the unusual anime ones: (hue in degrees, saturation, value).
HAIR_PALETTE: dict[str, tuple[float, float, float]] = {
    "black": (20, 0.35, 0.16),
    "dark_brown": (25, 0.60, 0.38),
    "chestnut": (24, 0.62, 0.60),
    "blonde": (46, 0.55, 0.96),
    "orange": (24, 0.80, 0.95),
    "red": (356, 0.78, 0.80),
    "pink": (330, 0.42, 1.00),
    "purple": (275, 0.50, 0.72),
    "blue": (220, 0.70, 0.82),
    "light_blue": (195, 0.45, 1.00),
    "green": (140, 0.50, 0.68),
    "teal": (175, 0.60, 0.70),
    "silver": (220, 0.07, 0.88),
}
HAIR_COLORS = tuple(HAIR_PALETTE)
_EYE_HUES = (215, 190, 130, 355, 280, 40, 25, 330, 160)

# A face's true attributes as Danbooru-style tags: the categorical groups (one tag each per face) and
# the tags a face has or not. `labels` names which of them a labelled dataset stores.
LABEL_GROUPS: dict[str, tuple[str, ...]] = {
    "hair_color": tuple(f"{name}_hair" for name in HAIR_COLORS),
    "hair_style": ("bob_cut", "long_hair", "twintails", "ponytail", "spiky_hair"),
    "bangs": tuple(f"{name}_bangs" for name in BANGS_STYLES),
    "mouth": ("smile", "open_mouth", "small_o_mouth", "closed_mouth", "cat_mouth"),
}
LABEL_TAGS = ("smile", "blush")
LABELS = (*LABEL_GROUPS, *LABEL_TAGS)


@dataclass(frozen=True)
class FaceParams:
    """Everything that varies between faces; rendering is a pure function of these."""

    hair_color: RGB
    hair_color_name: str
    """The HAIR_PALETTE entry `hair_color` was drawn around."""
    hair_style: str
    bangs_style: str
    eye_color: RGB
    eye_size: float
    skin_color: RGB
    face_x: float
    """Face centre as a fraction of the image width."""
    face_y: float
    face_size: float
    """Scale of the whole head relative to the nominal size (1.0)."""
    background_top: RGB
    background_bottom: RGB
    mouth_style: str
    blush: bool
    clothes_color: RGB
    accent_color: RGB
    """Hair ties and ribbons."""
    tail_side: int
    """-1 or 1: which side a ponytail hangs and which way swept bangs go."""


def _hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb((h / 360.0) % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shade(c: RGB, f: float) -> RGB:
    return tuple(min(255, round(x * f)) for x in c)  # type: ignore[return-value]


def sample_face_params(rng: np.random.Generator) -> FaceParams:
    """Draw one random face; all randomness of a face comes from ``rng``."""
    hair_name = HAIR_COLORS[rng.integers(len(HAIR_COLORS))]
    h, s, v = HAIR_PALETTE[hair_name]
    hair = _hsv(h + rng.uniform(-8, 8), s + rng.uniform(-0.08, 0.08), v + rng.uniform(-0.07, 0.05))
    eye_h = _EYE_HUES[rng.integers(len(_EYE_HUES))] + rng.uniform(-10, 10)
    eye = _hsv(eye_h, rng.uniform(0.55, 0.85), rng.uniform(0.6, 0.95))
    skin = _mix((255, 238, 226), (222, 170, 128), float(rng.beta(1.2, 3.5)))
    bg_h = rng.uniform(0, 360)
    bg_s, bg_v = rng.uniform(0.05, 0.45), rng.uniform(0.55, 1.0)
    bg_top = _hsv(bg_h, bg_s, bg_v)
    bg_bottom = _hsv(bg_h + rng.uniform(-40, 40), bg_s + rng.uniform(-0.05, 0.2), bg_v - rng.uniform(0, 0.3))
    return FaceParams(
        hair_color=hair,
        hair_color_name=hair_name,
        hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        bangs_style=BANGS_STYLES[rng.integers(len(BANGS_STYLES))],
        eye_color=eye,
        eye_size=float(rng.uniform(0.85, 1.2)),
        skin_color=skin,
        face_x=float(0.5 + rng.uniform(-0.035, 0.035)),
        face_y=float(0.53 + rng.uniform(-0.035, 0.035)),
        face_size=float(rng.uniform(0.87, 1.13)),
        background_top=bg_top,
        background_bottom=bg_bottom,
        mouth_style=MOUTH_STYLES[rng.integers(len(MOUTH_STYLES))],
        blush=bool(rng.random() < 0.5),
        clothes_color=_hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.25, 0.95)),
        accent_color=_hsv(rng.uniform(0, 360), rng.uniform(0.6, 0.9), rng.uniform(0.8, 1.0)),
        tail_side=int(rng.choice((-1, 1))),
    )


def face_tags(p: FaceParams) -> list[str]:
    """Every true attribute of a face as a tag (one per group, plus blush when it has it)."""
    tags = [
        LABEL_GROUPS["hair_color"][HAIR_COLORS.index(p.hair_color_name)],
        LABEL_GROUPS["hair_style"][HAIR_STYLES.index(p.hair_style)],
        LABEL_GROUPS["bangs"][BANGS_STYLES.index(p.bangs_style)],
        LABEL_GROUPS["mouth"][MOUTH_STYLES.index(p.mouth_style)],
    ]
    return tags + (["blush"] if p.blush else [])


def label_space(labels: Sequence[str]) -> LabelSpace:
    """The columns for `labels` (names from LABELS): each group's tags, each listed tag."""
    unknown = [name for name in labels if name not in LABELS]
    if unknown:
        raise DatasetError(f"unknown synthetic label {', '.join(map(repr, unknown))} (choose from "
                           f"{', '.join(LABELS)})")
    groups = {name: list(LABEL_GROUPS[name]) for name in labels if name in LABEL_GROUPS}
    names = [tag for name in labels for tag in (LABEL_GROUPS.get(name) or (name,))]
    space = LabelSpace(names, groups)
    space.check()
    return space


def face_labels(count: int, seed: int, space: LabelSpace) -> list[tuple[float, ...]]:
    """Face i's vector over `space` (from the same draws render_faces makes, without drawing)."""
    rows = []
    for i in range(count):
        vector, _ = label_vector(face_tags(sample_face_params(np.random.default_rng([seed, i]))), space)
        rows.append(vector)
    return rows


class _Canvas:
    """Maps face-relative units (1.0 = image size at face_size 1, origin at the face centre) to pixels; in a
    rectangle the unit is the short side and the face square sits at the top, centred across."""

    def __init__(self, params: FaceParams, img: Image.Image):
        size = min(img.width, img.height)
        self.cx, self.cy = (img.width - size) / 2 + params.face_x * size, params.face_y * size
        self.u = params.face_size * size
        self.line = max(1, round(size / 90))
        self.draw = ImageDraw.Draw(img)

    def pt(self, x: float, y: float) -> tuple[float, float]:
        return self.cx + x * self.u, self.cy + y * self.u

    def pts(self, xy: Sequence[tuple[float, float]]) -> Points:
        return [self.pt(x, y) for x, y in xy]

    def box(self, x: float, y: float, rx: float, ry: float) -> tuple[float, float, float, float]:
        return (*self.pt(x - rx, y - ry), *self.pt(x + rx, y + ry))

    def poly(self, xy: Sequence[tuple[float, float]], fill: RGB, outline: RGB | None = None) -> None:
        self.draw.polygon(self.pts(xy), fill=fill, outline=outline, width=self.line)

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill: RGB, outline: RGB | None = None):
        self.draw.ellipse(self.box(x, y, rx, ry), fill=fill, outline=outline, width=self.line)

    def lines(self, xy: Sequence[tuple[float, float]], fill: RGB, width: float = 1.0) -> None:
        self.draw.line(self.pts(xy), fill=fill, width=max(1, round(self.line * width)), joint="curve")


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int) -> Points:
    """Points on an ellipse from angle a0 to a1 (radians, y down, so angles in (pi, 2pi) are the top)."""
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(a0, a1, n)]


# Head geometry in face units.
_FACE_RX, _FACE_TOP, _FACE_CHIN = 0.235, 0.23, 0.28
_CAP_Y, _CAP_RX, _CAP_RY = -0.04, 0.30, 0.32
_EYE_X, _EYE_Y = 0.11, 0.045


def _face_outline() -> Points:
    """Round cranium with a softly pointed chin (a superellipse lower half)."""
    top = _arc(0, 0, _FACE_RX, _FACE_TOP, math.pi, 2 * math.pi, 12)
    us = np.linspace(1, -1, 15)[1:-1]
    jaw = [(_FACE_RX * u, _FACE_CHIN * (1 - abs(u) ** 1.4) ** (1 / 1.6)) for u in us]
    return top + jaw


_FACE_OUTLINE = _face_outline()
_CAP_TOP = _arc(0, _CAP_Y, _CAP_RX, _CAP_RY, math.pi, 2 * math.pi, 16)


def _draw_back_hair(c: _Canvas, p: FaceParams, back: RGB, edge: RGB) -> None:
    """Hair behind the head: its silhouette is what most distinguishes the styles."""
    style = p.hair_style
    if style == "bob":
        c.poly([(-_CAP_RX, _CAP_Y), *_CAP_TOP, (_CAP_RX, _CAP_Y), (0.32, 0.25), (-0.32, 0.25)], back, edge)
    elif style == "long":
        c.poly([(-_CAP_RX, _CAP_Y), *_CAP_TOP, (_CAP_RX, _CAP_Y), (0.37, 0.6), (-0.37, 0.6)], back, edge)
    elif style == "twintails":
        for s in (-1, 1):
            tail = [(s * 0.2, -0.28), (s * 0.42, -0.22), (s * 0.47, 0.15), (s * 0.43, 0.6), (s * 0.3, 0.6),
                    (s * 0.32, 0.1), (s * 0.25, -0.1)]
            c.poly(tail, back, edge)
        c.poly([(-_CAP_RX, _CAP_Y), *_CAP_TOP, (_CAP_RX, _CAP_Y), (0.29, 0.1), (-0.29, 0.1)], back, edge)
        for s in (-1, 1):
            c.ellipse(s * 0.30, -0.23, 0.045, 0.045, p.accent_color, _shade(p.accent_color, 0.6))
    elif style == "ponytail":
        s = p.tail_side
        c.poly([(s * 0.1, -0.34), (s * 0.38, -0.32), (s * 0.46, -0.05), (s * 0.42, 0.35), (s * 0.34, 0.5),
                (s * 0.31, 0.1), (s * 0.22, -0.15)], back, edge)
        c.poly([(-_CAP_RX, _CAP_Y), *_CAP_TOP, (_CAP_RX, _CAP_Y), (0.28, 0.08), (-0.28, 0.08)], back, edge)
        c.ellipse(s * 0.27, -0.3, 0.05, 0.04, p.accent_color, _shade(p.accent_color, 0.6))
    else:  # spiky: alternating radii around the head
        n = 13
        spikes = []
        for i in range(n + 1):
            t = math.pi * (0.9 + 1.2 * i / n)
            r = 1.12 if i % 2 else 0.96
            spikes.append((_CAP_RX * r * math.cos(t), _CAP_Y + _CAP_RY * r * math.sin(t)))
        c.poly([(-0.3, 0.15), *spikes, (0.3, 0.15)], back, edge)


def _draw_eye(c: _Canvas, p: FaceParams, side: int) -> None:
    """Tall anime eye: sclera, two-tone iris, pupil, highlights and a heavy upper lash line."""
    x, y = side * _EYE_X, _EYE_Y
    rx, ry = 0.065 * p.eye_size, 0.075 * p.eye_size
    lash = (40, 28, 30)
    c.ellipse(x, y, rx, ry, (255, 255, 255))
    c.ellipse(x, y + 0.06 * ry, 0.78 * rx, 0.92 * ry, _shade(p.eye_color, 0.55))
    c.ellipse(x, y + 0.3 * ry, 0.62 * rx, 0.62 * ry, p.eye_color)
    c.ellipse(x, y + 0.12 * ry, 0.34 * rx, 0.45 * ry, _shade(p.eye_color, 0.25))
    c.ellipse(x - side * 0.05 * rx - 0.25 * rx, y - 0.3 * ry, 0.26 * rx, 0.24 * ry, (255, 255, 255))
    c.ellipse(x + 0.3 * rx, y + 0.45 * ry, 0.12 * rx, 0.1 * ry, (255, 255, 255))
    outer = _arc(x, y, 1.08 * rx, 1.05 * ry, math.pi + 0.25, 2 * math.pi - 0.25, 8)
    inner = _arc(x, y, 1.0 * rx, 0.8 * ry, 2 * math.pi - 0.35, math.pi + 0.35, 8)
    if side > 0:
        outer.append((x + 1.35 * rx, y - 0.2 * ry))
    else:
        outer.insert(0, (x - 1.35 * rx, y - 0.2 * ry))
    c.poly(outer + inner, lash)
    c.lines([(x + side * 0.5 * rx, y + 0.98 * ry), (x + side * 0.95 * rx, y + 0.7 * ry)], lash)


def _draw_mouth(c: _Canvas, p: FaceParams) -> None:
    dark, y = (110, 35, 45), 0.2
    style = p.mouth_style
    if style == "smile":
        c.lines(_arc(0, y - 0.03, 0.045, 0.03, 0.3, math.pi - 0.3, 6), dark, width=1.5)
    elif style == "open":
        c.poly(_arc(0, y - 0.01, 0.035, 0.035, 0, math.pi, 8), (150, 40, 50), dark)
        c.poly(_arc(0, y + 0.012, 0.022, 0.012, 0, math.pi, 6), (235, 120, 130))
    elif style == "small_o":
        c.ellipse(0, y, 0.014, 0.018, (150, 40, 50), dark)
    elif style == "flat":
        c.lines([(-0.03, y), (0.03, y)], dark, width=1.5)
    else:  # cat ":3" mouth
        w = [(-0.035, y - 0.01), (-0.018, y + 0.008), (0, y - 0.004), (0.018, y + 0.008), (0.035, y - 0.01)]
        c.lines(w, dark, width=1.5)


def draw_mouth(img: Image.Image, style: str, face_x: float, face_y: float, face_size: float) -> None:
    """Draw one mouth style where a face so placed has it (the face attribute reader's templates)."""
    params = SimpleNamespace(face_x=face_x, face_y=face_y, face_size=face_size, mouth_style=style)
    _draw_mouth(_Canvas(params, img), params)


def hair_rgb(name: str) -> RGB:
    """A HAIR_PALETTE colour as drawn before its per-face jitter."""
    return _hsv(*HAIR_PALETTE[name])


def _bangs_edge(p: FaceParams) -> Points:
    """Lower edge of the fringe, from right to left (closing the polygon over the cap)."""
    style, s = p.bangs_style, p.tail_side
    if style == "blunt":
        return [(0.26, -0.06), (0.1, -0.055), (-0.1, -0.055), (-0.26, -0.06)]
    if style == "jagged":
        xs = np.linspace(0.26, -0.26, 9)
        return [(float(x), -0.04 if i % 2 else -0.15) for i, x in enumerate(xs)]
    if style == "swept":
        pts = [(0.26, -0.08), (0.18, -0.16), (0.1, -0.05), (0.02, -0.17), (-0.08, -0.04), (-0.14, -0.16),
               (-0.24, -0.05), (-0.26, -0.1)]
        return [(s * x, y) for x, y in pts]
    return [(0.26, -0.03), (0.14, -0.08), (0.05, -0.16), (0.0, -0.22), (-0.05, -0.16), (-0.14, -0.08),
            (-0.26, -0.03)]


def _draw_front_hair(c: _Canvas, p: FaceParams, hair: RGB, edge: RGB) -> None:
    """Side locks and bangs over the face, plus a glossy highlight band."""
    lock_len = {"bob": 0.22, "long": 0.3, "twintails": 0.26, "ponytail": 0.16, "spiky": 0.12}[p.hair_style]
    for s in (-1, 1):
        c.poly([(s * 0.2, -0.16), (s * 0.31, -0.1), (s * 0.29, lock_len), (s * 0.24, lock_len + 0.04),
                (s * 0.21, 0.05)], hair, edge)
    cap = _arc(0, _CAP_Y, _CAP_RX * 1.01, _CAP_RY * 1.01, math.pi + 0.15, 2 * math.pi - 0.15, 16)
    c.poly(cap + _bangs_edge(p), hair, edge)
    shine = _mix(hair, (255, 255, 255), 0.35)
    for a0, a1 in ((math.pi + 0.55, math.pi + 1.2), (math.pi + 1.45, 2 * math.pi - 0.6)):
        c.lines(_arc(0, -0.19, 0.21, 0.13, a0, a1, 5), shine, width=1.6)


# Shoulders in the square; at a portrait aspect they continue into a torso and arms down past the bottom.
_SHOULDERS = [(-0.5, 0.6), (-0.42, 0.39), (-0.12, 0.34), (0, 0.42), (0.12, 0.34), (0.42, 0.39), (0.5, 0.6)]
_TORSO = [(-0.42, 0.39), (-0.12, 0.34), (0, 0.42), (0.12, 0.34), (0.42, 0.39), (0.58, 0.55), (0.62, 4.0),
          (-0.62, 4.0), (-0.58, 0.55)]


def render_face(params: FaceParams, resolution: int, aspect: Aspect = SQUARE) -> np.ndarray:
    """Draw at SUPERSAMPLE× and downsample with LANCZOS, so small outputs get clean anti-aliased edges;
    `resolution` is the short side of an `aspect` image."""
    width, height = aspect.size(resolution * SUPERSAMPLE)
    p = params
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    column = np.asarray(p.background_top, np.float32) * (1 - ramp) + np.asarray(p.background_bottom) * ramp
    bg = np.ascontiguousarray(np.broadcast_to(column.astype(np.uint8)[:, None, :], (height, width, 3)))
    img = Image.fromarray(bg, "RGB")
    c = _Canvas(p, img)

    hair, skin = p.hair_color, p.skin_color
    back, edge = _shade(hair, 0.78), _shade(hair, 0.45)
    skin_edge, skin_shadow = _shade(skin, 0.62), _shade(skin, 0.86)

    _draw_back_hair(c, p, back, edge)
    c.poly([(-0.075, 0.1), (0.075, 0.1), (0.08, 0.42), (-0.08, 0.42)], skin_shadow, skin_edge)
    clothes_edge = _shade(p.clothes_color, 0.5)
    if aspect.height > aspect.width:
        for s in (-1, 1):  # arms, behind the torso
            arm = [(s * 0.5, 0.45), (s * 0.7, 0.6), (s * 0.74, 4.0), (s * 0.56, 4.0)]
            c.poly(arm, skin_shadow, skin_edge)
        c.poly(_TORSO, p.clothes_color, clothes_edge)
        c.lines([(0, 0.42), (0, 4.0)], clothes_edge)
    else:
        c.poly(_SHOULDERS, p.clothes_color, clothes_edge)
    c.poly(_FACE_OUTLINE, skin, skin_edge)
    if p.blush:
        blush = _mix(skin, (255, 110, 130), 0.4)
        for s in (-1, 1):
            c.ellipse(s * 0.145, 0.135, 0.045, 0.02, blush)
    for s in (-1, 1):
        _draw_eye(c, p, s)
    c.lines([(0.006, 0.125), (0.0, 0.14)], skin_edge)
    _draw_mouth(c, p)
    _draw_front_hair(c, p, hair, edge)
    return resample(np.asarray(img), *aspect.size(resolution))


def render_faces(count: int, resolution: int, seed: int, *, progress: bool = True,
                 aspect: Aspect = SQUARE) -> np.ndarray:
    """Face i depends only on (seed, i), so a larger request extends a smaller one image for image."""
    out = np.empty((count, *aspect.shape(resolution), 3), np.uint8)
    for i in progress_bar(range(count), desc="drawing faces", unit="face", enabled=progress):
        out[i] = render_face(sample_face_params(np.random.default_rng([seed, i])), resolution, aspect)
    return out


def ensure_synthetic_dataset(
    out_dir: str | Path,
    *,
    count: int,
    resolution: int,
    seed: int,
    image_format: str = "png",
    labels: Sequence[str] = (),
    aspect: Aspect = SQUARE,
) -> Path:
    """Render and pack the dataset once; later runs with the same request reuse it. With `labels`
    (names from LABELS) every face carries its true attributes as a label vector.

    A directory made with other parameters is never silently overwritten or reused, since that would
    train on data the config does not describe; nor is one without the requested labels (one with
    labels serves an unlabelled request: the images are the same).
    """
    # Imported here so drawing faces does not need TensorFlow.
    from stylegan_exp.data.dataset_format import INFO_FILE
    from stylegan_exp.data.reader import load_info
    from stylegan_exp.data.writer import pack_arrays

    out_dir = Path(out_dir)
    space = label_space(labels) if labels else None
    wanted = {"count": count, "resolution": resolution, "seed": seed, "generator_version": GENERATOR_VERSION}
    if not aspect.square:  # square sets are recorded as they always were
        wanted["aspect"] = str(aspect)
    if (out_dir / INFO_FILE).is_file():
        info = load_info(out_dir)
        found = info.meta.get("synthetic")
        if not isinstance(found, dict):
            raise DatasetError(f"{out_dir} holds a dataset that is not synthetic; set another dataset.path")
        diff = [f"{k}={found.get(k)!r} (requested {v!r})" for k, v in wanted.items() if found.get(k) != v]
        if aspect.square and "aspect" in found:
            diff.append(f"aspect={found['aspect']!r} (requested '1:1')")
        if diff:
            raise DatasetError(
                f"synthetic dataset at {out_dir} was made with {', '.join(diff)}; "
                "delete that directory or choose another dataset.path"
            )
        if space is not None and (info.labels is None or (info.labels.names, info.labels.groups)
                                  != (space.names, space.groups)):
            made = f"labels {found['labels']}" if found.get("labels") else "no labels"
            raise DatasetError(
                f"synthetic dataset at {out_dir} was made with {made} (requested labels {list(labels)}); "
                "delete that directory or choose another dataset.path"
            )
        log.info("reusing synthetic dataset at %s (%d faces, %dx%d)", out_dir, count,
                 *aspect.size(resolution))
        return out_dir
    log.info("drawing %d synthetic faces at %dx%d into %s", count, *aspect.size(resolution), out_dir)
    images = render_faces(count, resolution, seed, aspect=aspect)
    meta = {"synthetic": {**wanted, "labels": list(labels)} if labels else wanted}
    pack_arrays(images, out_dir, image_format=image_format, meta=meta, label_space=space,
                labels=face_labels(count, seed, space) if space else None, aspect=aspect)
    return out_dir


def contact_sheet(images: np.ndarray, columns: int = 8, gap: int = 2) -> np.ndarray:
    """Tile images into one grid image for a quick visual check."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    sheet = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, col = divmod(i, columns)
        y, x = gap + r * (h + gap), gap + col * (w + gap)
        sheet[y : y + h, x : x + w] = im
    return sheet


def main(argv: Sequence[str] | None = None) -> None:
    """Build (or reuse) a synthetic dataset from the command line, optionally with an 8x8 contact sheet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="dataset directory")
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aspect", default="1:1", help="width:height, e.g. 1:2 (resolution: the short side)")
    parser.add_argument("--image-format", default="png", help="passed to writer.pack_arrays")
    parser.add_argument("--sheet", type=Path, help="also write an 8x8 contact sheet of the first faces here")
    parser.add_argument("--labels", nargs="*", default=[], metavar="NAME",
                        help=f"store these true attributes as labels ({', '.join(LABELS)})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        aspect = parse_aspect(args.aspect, "--aspect")
        ensure_synthetic_dataset(
            args.out, count=args.count, resolution=args.resolution, seed=args.seed,
            image_format=args.image_format, labels=args.labels, aspect=aspect,
        )
    except ValueError as exc:  # a mismatched or foreign directory: one line for the user, no traceback
        sys.exit(f"error: {exc}")
    if args.sheet is not None:
        faces = render_faces(min(64, args.count), args.resolution, args.seed, progress=False, aspect=aspect)
        Image.fromarray(contact_sheet(faces)).save(args.sheet)
        log.info("wrote contact sheet %s", args.sheet)


if __name__ == "__main__":
    main()
