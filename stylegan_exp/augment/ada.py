"""Adaptive discriminator augmentation (Karras et al. 2020, stylegan2-ada's `augment_pipeline` and
`AdaptiveAugment`): each enabled transform hits an image with probability p; p follows the overfitting
heuristic r_t = E[sign(D(real))] toward a target.

Transforms run in the original's order: the pixel blits (x-flip, quarter turns, whole-pixel shifts) as an
exact remap, then the general geometric ones (isotropic scale, rotation, anisotropic scale, rotation,
fractional shift) as one anti-aliased warp, then one colour matrix (brightness, contrast, luma flip, hue,
saturation). The original routes the blits through the warp too, which blurs them slightly; remapping
them exactly gives the same transforms without it. Rotation is applied before and after the anisotropic
scale, each with probability 1 - √(1 - p), so that one of them happens with probability p.

On a rectangle the quarter turns are half turns (0° or 180°, from the same draws): a quarter turn does not
map a portrait onto itself (reflected borders fill it), so unlike the rectangle's own symmetries (flips,
half turns) it is no invertible transform of the data and G could learn it (a leak). Every other transform
works in pixels along each axis, as on a square.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from stylegan_exp.augment import warp
from stylegan_exp.augment.base import Augmentation, Draws
from stylegan_exp.config import ADAStrengths, ADATransform

T = ADATransform
BLITS = (T.xflip, T.rotate90, T.xint)
GEOMETRIC = (T.scale, T.rotate, T.aniso, T.xfrac)
COLOUR = (T.brightness, T.contrast, T.lumaflip, T.hue, T.saturation)
# Random numbers per image and transform: (uniforms, normals); the first uniform(s) gate the transform
# (rotation has two gates and two angles: before and after the anisotropic scale).
DRAWS = {T.xflip: (2, 0), T.rotate90: (2, 0), T.xint: (3, 0), T.scale: (1, 1), T.rotate: (4, 0),
         T.aniso: (1, 1), T.xfrac: (1, 2), T.brightness: (1, 1), T.contrast: (1, 1), T.lumaflip: (2, 0),
         T.hue: (2, 0), T.saturation: (1, 1)}
_LUMA = np.array([1, 1, 1, 0], np.float32) / math.sqrt(3)  # the luma axis in homogeneous RGB


def adjusted_p(p: tf.Tensor | float, rt: tf.Tensor | float, target: float, images: tf.Tensor | float,
               ada_kimg: float) -> tf.Tensor:
    """stylegan2-ada's update after `images` reals with mean sign r_t: p moves by images / (ada_kimg·1000)
    up when r_t > target (D too sure of the reals), down when below, and stays within [0, 1]."""
    step = tf.sign(tf.cast(rt, tf.float32) - target) * tf.cast(images, tf.float32) / (ada_kimg * 1000.0)
    return tf.clip_by_value(tf.cast(p, tf.float32) + step, 0.0, 1.0)


def _gated(gate: tf.Tensor, probability: tf.Tensor, value: tf.Tensor, off: float) -> tf.Tensor:
    return tf.where(gate < probability, value, tf.cast(off, value.dtype))


def _rotate3d(theta: tf.Tensor) -> tf.Tensor:
    """Rotations by `theta` [N] about the luma axis, as [N, 4, 4] homogeneous colour matrices."""
    vx, vy, vz = (float(v) for v in _LUMA[:3])
    c, s = tf.cos(theta), tf.sin(theta)
    cc = 1 - c
    return warp.matrices(
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
        [0, 0, 0, 1])


def _chain(steps: list[tf.Tensor]) -> tf.Tensor | None:
    """The product steps[0] @ steps[1] @ …, or None for no steps."""
    product = None
    for m in steps:
        product = m if product is None else product @ m
    return product


class ADA(Augmentation):
    """The ADA pipeline at probability `p` (a variable: checkpointed, and tuned when `adaptive`).

    Tuning follows the original: the signs of D's scores on the (augmented) reals are summed over `interval`
    D steps; then p += sign(r_t - target) · images / (ada_kimg·1000). Everything happens in the step's graph
    from all-reduced statistics, so every replica and worker holds the same p.
    """

    enabled = True

    def __init__(self, pipeline: list[ADATransform], strengths: ADAStrengths, channels: int, *, p: float,
                 adaptive: bool, target: float = 0.6, interval: int = 4, ada_kimg: float = 500.0,
                 static_shapes: bool = False) -> None:
        """`static_shapes` pads every warp to the maximum, for XLA (same results, more work)."""
        super().__init__(name="ada")
        enabled = {ADATransform(t) for t in pipeline}
        if channels == 1:
            enabled -= {T.hue, T.saturation}
        self.transforms = [t for t in DRAWS if t in enabled]  # the pipeline's order
        self.strengths, self.channels = strengths, channels
        self.adaptive, self.target, self.interval, self.ada_kimg = adaptive, target, interval, ada_kimg
        self.static_shapes = static_shapes
        self._columns, u, n = {}, 0, 0
        for t in self.transforms:
            self._columns[t] = (u, n)
            u, n = u + DRAWS[t][0], n + DRAWS[t][1]
        self._sizes = (u, n)
        self.p = tf.Variable(p, dtype=tf.float32, trainable=False, name="p")
        # Since the last adjustment: sum of signs of D(real), reals seen, D steps.
        self.signs = tf.Variable(0.0, trainable=False, name="signs")
        self.seen = tf.Variable(0.0, trainable=False, name="seen")
        self.steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps")

    def draw(self, rng: tf.random.Generator, n: tf.Tensor | int) -> Draws:
        """The random numbers of `n` images, and p as it is now: the step that adjusts p (`observe`) also
        augments, and must augment with the p its draws were made with, however its ops are scheduled."""
        uniforms, normals = self._sizes
        return {"uniform": rng.uniform([n, uniforms]), "normal": rng.normal([n, normals]),
                "p": tf.fill([n], tf.convert_to_tensor(self.p))}

    def _take(self, draws: Draws, t: ADATransform) -> tuple[tf.Tensor, tf.Tensor]:
        (u, n), (nu, nn) = self._columns[t], DRAWS[t]
        return draws["uniform"][:, u:u + nu], draws["normal"][:, n:n + nn]

    def __call__(self, images: tf.Tensor, draws: Draws) -> tf.Tensor:
        x = tf.cast(images, tf.float32)
        p = draws["p"][0]  # every row holds the same p
        blits, general = self._blits(x, draws, p), self._geometric(x, draws, p)
        colour = self._colour(draws, p)
        if blits is not None:
            x = warp.remap(x, blits)
        if general is not None:
            x = warp.warp(x, general, static_padding=self.static_shapes)
        if colour is not None:
            if self.channels == 3:
                x = tf.einsum("nhwc,ndc->nhwd", x, colour[:, :3, :3]) + colour[:, None, None, :3, 3]
            else:
                mean = tf.reduce_mean(colour[:, :3, :], axis=1)  # [N, 4]: what the grey channel gets
                x = x * tf.reduce_sum(mean[:, :3], axis=1)[:, None, None, None] + mean[:, None, None, 3:]
        return x

    def _blits(self, x: tf.Tensor, draws: Draws, p: tf.Tensor) -> tf.Tensor | None:
        """Inverse map (output → input pixel) of the exact blits, or None when the pipeline has none."""
        height, width = x.shape[1], x.shape[2]
        steps = []
        if T.xflip in self.transforms:
            u, _ = self._take(draws, T.xflip)
            steps.append(warp.scale(1 - 2 * _gated(u[:, 0], p, tf.floor(u[:, 1] * 2), 0), 1.0))
        if T.rotate90 in self.transforms:
            u, _ = self._take(draws, T.rotate90)
            turns = tf.floor(u[:, 1] * 4) if height == width else 2 * tf.floor(u[:, 1] * 2)
            steps.append(warp.rotate(math.pi / 2 * _gated(u[:, 0], p, turns, 0)))
        if T.xint in self.transforms:
            u, _ = self._take(draws, T.xint)
            shift = _gated(u[:, :1], p, (u[:, 1:3] * 2 - 1) * self.strengths.xint_max, 0)
            pixels = tf.math.rint(shift * [width, height])
            steps.append(warp.translate(-pixels[:, 0], -pixels[:, 1]))
        return _chain(steps)

    def _geometric(self, x: tf.Tensor, draws: Draws, p: tf.Tensor) -> tf.Tensor | None:
        """Inverse map of the general geometric transforms, or None when the pipeline has none."""
        s = self.strengths
        height, width = x.shape[1], x.shape[2]
        steps, after = [], None
        if T.scale in self.transforms:
            u, g = self._take(draws, T.scale)
            factor = _gated(u[:, 0], p, 2 ** (g[:, 0] * s.scale_std), 1)
            steps.append(warp.scale(1 / factor, 1 / factor))
        if T.rotate in self.transforms:
            u, _ = self._take(draws, T.rotate)
            p_rot = 1 - tf.sqrt(tf.maximum(1 - p, 0.0))  # P(before or after) = p
            angles = (u[:, 2:4] * 2 - 1) * (math.pi * s.rotate_max)
            steps.append(warp.rotate(_gated(u[:, 0], p_rot, angles[:, 0], 0)))
            after = warp.rotate(_gated(u[:, 1], p_rot, angles[:, 1], 0))
        if T.aniso in self.transforms:
            u, g = self._take(draws, T.aniso)
            factor = _gated(u[:, 0], p, 2 ** (g[:, 0] * s.aniso_std), 1)
            steps.append(warp.scale(1 / factor, factor))
        if after is not None:
            steps.append(after)
        if T.xfrac in self.transforms:
            u, g = self._take(draws, T.xfrac)
            shift = _gated(u[:, :1], p, g * s.xfrac_std, 0)
            steps.append(warp.translate(-shift[:, 0] * width, -shift[:, 1] * height))
        return _chain(steps)

    def _colour(self, draws: Draws, p: tf.Tensor) -> tf.Tensor | None:
        """[N, 4, 4] homogeneous colour matrix (applied as C @ rgb1), or None when the pipeline has none."""
        s = self.strengths
        v = tf.constant(_LUMA)
        luma = tf.tensordot(v, v, axes=0)  # v vᵀ
        steps = []
        if T.brightness in self.transforms:
            u, g = self._take(draws, T.brightness)
            b = _gated(u[:, 0], p, g[:, 0] * s.brightness_std, 0)
            steps.append(warp.matrices([1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]))
        if T.contrast in self.transforms:
            u, g = self._take(draws, T.contrast)
            c = _gated(u[:, 0], p, 2 ** (g[:, 0] * s.contrast_std), 1)
            steps.append(warp.matrices([c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]))
        if T.lumaflip in self.transforms:
            u, _ = self._take(draws, T.lumaflip)
            i = _gated(u[:, 0], p, tf.floor(u[:, 1] * 2), 0)
            steps.append(tf.eye(4) - 2 * luma * i[:, None, None])  # Householder reflection
        if T.hue in self.transforms:
            u, _ = self._take(draws, T.hue)
            steps.append(_rotate3d(_gated(u[:, 0], p, (u[:, 1] * 2 - 1) * (math.pi * s.hue_max), 0)))
        if T.saturation in self.transforms:
            u, g = self._take(draws, T.saturation)
            factor = _gated(u[:, 0], p, 2 ** (g[:, 0] * s.saturation_std), 1)
            steps.append(luma + (tf.eye(4) - luma) * factor[:, None, None])
        return _chain(steps[::-1])  # each colour step acts on the result of the previous one

    def observe(self, rt: tf.Tensor, n: tf.Tensor) -> None:
        if not self.adaptive:
            return
        n = tf.cast(n, tf.float32)
        signs, seen = self.signs.assign_add(rt * n), self.seen.assign_add(n)
        due = self.steps.assign_add(1) >= self.interval
        adjusted = adjusted_p(self.p, signs / seen, self.target, seen, self.ada_kimg)
        self.p.assign(tf.where(due, adjusted, self.p))
        self.signs.assign(tf.where(due, 0.0, signs))
        self.seen.assign(tf.where(due, 0.0, seen))
        self.steps.assign(tf.where(due, tf.constant(0, tf.int64), self.steps))

    def log_state(self) -> dict[str, float]:
        return {"augment/p": float(self.p.numpy())}
