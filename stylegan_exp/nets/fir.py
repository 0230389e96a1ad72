"""StyleGAN2's FIR resampling (NHWC): upfirdn2d and the up/down-sampling (convolution) wrappers built on it.

Semantics of the original's `upfirdn_2d.py`: a 1-D filter such as [1, 3, 3, 1] becomes its outer product
normalized to sum 1 (times factor² when upsampling); upsampling inserts factor-1 zeros after every pixel,
pads, filters and keeps the full output; the fused up-convolution is a stride-2 transposed convolution with
the spatially flipped kernel followed by the filter; the fused down-convolution filters first, then
convolves with stride 2. Paddings are the original's, so imported weights give the original's images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf


def fir_kernel(taps: Sequence[float]) -> np.ndarray:
    """A separable 2-D filter from 1-D taps (or a 2-D filter as given), normalized to sum 1."""
    k = np.asarray(taps, dtype=np.float32)
    if k.ndim == 1:
        k = np.outer(k, k)
    return k / np.sum(k)


def upfirdn2d(x: tf.Tensor, kernel: np.ndarray, *, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> tf.Tensor:
    """Upsample by zero insertion, pad (before, after) on both spatial axes, convolve with `kernel` (a true
    convolution: the kernel is flipped), keep every `down`-th pixel. `pad` must be non-negative."""
    if up > 1:
        x = insert_zeros(x, up)
    c = x.shape[3]
    x = tf.pad(x, [[0, 0], list(pad), list(pad), [0, 0]])
    k = np.tile(kernel[::-1, ::-1, None, None], [1, 1, c, 1])
    return tf.nn.depthwise_conv2d(x, tf.constant(k, dtype=x.dtype), strides=[1, down, down, 1],
                                  padding="VALID")


def insert_zeros(x: tf.Tensor, up: int) -> tf.Tensor:
    """up - 1 zeros after every pixel along both spatial axes, with tensors of rank ≤ 4 (TFLite's limit)."""
    _, h, w, c = x.shape
    batch = tf.shape(x)[0]
    zeros = tf.zeros_like(x)
    x = tf.reshape(tf.concat([x] + [zeros] * (up - 1), axis=3), [batch, h, w * up * c])  # zeros after a pixel
    x = tf.concat([x] + [tf.zeros_like(x)] * (up - 1), axis=2)  # a row of zeros after every row
    return tf.reshape(x, [batch, h * up, w * up, c])


def upsample2d(x: tf.Tensor, taps: Sequence[float], factor: int = 2) -> tf.Tensor:
    """2× (factor×) upsampling with the FIR filter (the skip generator's image path)."""
    k = fir_kernel(taps) * factor**2
    p = k.shape[0] - factor
    return upfirdn2d(x, k, up=factor, pad=((p + 1) // 2 + factor - 1, p // 2))


def downsample2d(x: tf.Tensor, taps: Sequence[float], factor: int = 2) -> tf.Tensor:
    """1/2 (1/factor) downsampling with the FIR filter (the skip discriminator's image path)."""
    k = fir_kernel(taps)
    p = k.shape[0] - factor
    return upfirdn2d(x, k, down=factor, pad=((p + 1) // 2, p // 2))


def upsample_conv2d(x: tf.Tensor, w: tf.Tensor, taps: Sequence[float], factor: int = 2) -> tf.Tensor:
    """Upsampling fused with a k×k convolution (w: [k, k, in, out]), then the FIR filter."""
    kernel = w.shape[0]
    k = fir_kernel(taps) * factor**2
    p = (k.shape[0] - factor) - (kernel - 1)
    shape = tf.shape(x)
    out_shape = tf.stack([shape[0], (x.shape[1] - 1) * factor + kernel, (x.shape[2] - 1) * factor + kernel,
                          w.shape[3]])
    flipped = tf.transpose(w[::-1, ::-1], [0, 1, 3, 2])  # conv2d_transpose wants [k, k, out, in]
    x = tf.nn.conv2d_transpose(x, flipped, out_shape, strides=factor, padding="VALID")
    return upfirdn2d(x, k, pad=((p + 1) // 2 + factor - 1, p // 2 + 1))


def conv_downsample2d(x: tf.Tensor, w: tf.Tensor, taps: Sequence[float], factor: int = 2) -> tf.Tensor:
    """The FIR filter, then a k×k convolution (w: [k, k, in, out]) with stride `factor`."""
    kernel = w.shape[0]
    k = fir_kernel(taps)
    p = (k.shape[0] - factor) + (kernel - 1)
    x = upfirdn2d(x, k, pad=((p + 1) // 2, p // 2))
    return tf.nn.conv2d(x, w, strides=factor, padding="VALID")
