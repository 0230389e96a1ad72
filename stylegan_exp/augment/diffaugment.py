"""DiffAugment (Zhao et al. 2020): cheap differentiable colour, translation and cut-out, applied to every
image D sees, every time (no probability)."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.augment.base import Augmentation, Draws
from stylegan_exp.config import DiffAugmentOp

# Uniform draws per image: brightness, saturation, contrast, shift x, shift y, cut-out centre x, y.
_COLUMNS = 7


def _shift(images: tf.Tensor, shift: tf.Tensor, axis: int) -> tf.Tensor:
    """Each image moved by its whole-pixel `shift` [N] along `axis` (1 rows, 2 columns); zeros come in."""
    size = images.shape[axis]
    source = tf.range(size)[None, :] - shift[:, None]  # [N, size]: output i shows input i - shift
    inside = tf.cast((source >= 0) & (source < size), images.dtype)
    moved = tf.gather(images, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    mask_shape = [-1, size, 1, 1] if axis == 1 else [-1, 1, size, 1]
    return moved * tf.reshape(inside, mask_shape)


class DiffAugment(Augmentation):
    """The `policy` ops in order: color = brightness ± 0.5, saturation × U(0, 2), contrast × U(0.5, 1.5);
    translation = whole-pixel shifts up to `translation` of the size, zero-filled; cutout = a zeroed square
    of side `cutout` of the size centred anywhere (clipped at the border). On a rectangle each axis takes its
    own side, as the original (a cut-out of `cutout` × each side)."""

    enabled = True

    def __init__(self, policy: list[DiffAugmentOp], translation: float, cutout: float) -> None:
        super().__init__(name="diffaugment")
        self.policy = [DiffAugmentOp(op) for op in policy]
        self.translation, self.cutout = translation, cutout

    def draw(self, rng: tf.random.Generator, n: tf.Tensor | int) -> Draws:
        return {"uniform": rng.uniform([n, _COLUMNS])}

    def __call__(self, images: tf.Tensor, draws: Draws) -> tf.Tensor:
        x = tf.cast(images, tf.float32)
        u = draws["uniform"]
        sizes = tf.constant([x.shape[2], x.shape[1]], tf.float32)  # (width, height)

        def column(i: int) -> tf.Tensor:
            return tf.reshape(u[:, i], [-1, 1, 1, 1])

        for op in self.policy:
            if op == DiffAugmentOp.color:
                x = x + (column(0) - 0.5)
                mean = tf.reduce_mean(x, axis=3, keepdims=True)
                x = (x - mean) * (column(1) * 2.0) + mean
                mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
                x = (x - mean) * (column(2) + 0.5) + mean
            elif op == DiffAugmentOp.translation:
                reach = [int(x.shape[axis] * self.translation + 0.5) for axis in (2, 1)]
                shifts = tf.cast(tf.floor(u[:, 3:5] * [2 * r + 1 for r in reach]), tf.int32) - reach
                x = _shift(_shift(x, shifts[:, 0], axis=2), shifts[:, 1], axis=1)
            else:
                side = [int(x.shape[axis] * self.cutout + 0.5) for axis in (2, 1)]
                odd = tf.constant([s % 2 for s in side], tf.float32)
                centre = tf.floor(u[:, 5:7] * (sizes + 1 - odd)) - [s // 2 for s in side]  # first zeroed
                columns = tf.range(x.shape[2], dtype=tf.float32)[None, :]
                rows = tf.range(x.shape[1], dtype=tf.float32)[None, :]
                cut_x = (columns >= centre[:, :1]) & (columns < centre[:, :1] + side[0])
                cut_y = (rows >= centre[:, 1:]) & (rows < centre[:, 1:] + side[1])
                keep = ~(cut_y[:, :, None] & cut_x[:, None, :])
                x = x * tf.cast(keep, x.dtype)[..., None]
        return x
