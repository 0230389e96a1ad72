"""StyleGAN3's two operations (NHWC, float32): the modulated convolution with its input gain, and the filtered
leaky ReLU (bias, upsample, low-pass, lrelu·gain, clamp, low-pass, downsample), with the semantics of the
original's reference implementation (`_filtered_lrelu_ref`, `upfirdn2d`): zeros are inserted after every pixel
when upsampling, padding may be negative (a crop), filters are applied as true convolutions, separable ones
per axis, and the upsampling filter carries the gain up² (up per axis).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stylegan_exp.nets.fir import insert_zeros


@tf.autograph.experimental.do_not_convert
def pad_or_crop(x: tf.Tensor, low: int, high: int) -> tf.Tensor:
    """Both spatial axes padded with zeros (positive) or cropped (negative) by `low` before, `high` after."""
    x = tf.pad(x, [[0, 0], [max(low, 0), max(high, 0)], [max(low, 0), max(high, 0)], [0, 0]])
    h, w = x.shape[1], x.shape[2]
    return x[:, max(-low, 0) : h - max(-high, 0), max(-low, 0) : w - max(-high, 0), :]


@tf.autograph.experimental.do_not_convert
def fir_filter(x: tf.Tensor, f: np.ndarray | None, gain: float = 1.0, down: int = 1) -> tf.Tensor:
    """Valid convolution with filter `f` (1-D: separable, else 2-D) times `gain`, keeping every `down`-th
    output pixel from the first."""
    if f is None:
        x = x * gain if gain != 1 else x
        return x[:, ::down, ::down, :] if down > 1 else x
    c = x.shape[3]
    if f.ndim == 1:
        taps = f[::-1] * np.sqrt(gain)
        vertical = np.tile(taps[:, None, None, None], [1, 1, c, 1]).astype(np.float32)
        horizontal = np.tile(taps[None, :, None, None], [1, 1, c, 1]).astype(np.float32)
        x = tf.nn.depthwise_conv2d(x, tf.constant(vertical), [1, down, 1, 1], "VALID")
        return tf.nn.depthwise_conv2d(x, tf.constant(horizontal), [1, 1, down, 1], "VALID")
    k = np.tile((f[::-1, ::-1] * gain)[:, :, None, None], [1, 1, c, 1]).astype(np.float32)
    return tf.nn.depthwise_conv2d(x, tf.constant(k), [1, down, down, 1], "VALID")


def _upsample_axis(x: tf.Tensor, f: np.ndarray, up: int, pad: tuple[int, int], axis: int) -> tf.Tensor:
    """Along spatial `axis` (1 or 2): zero insertion by `up`, padding (low, high) and the true convolution
    with the 1-D filter `f` (valid), computed polyphase: output phase r is a valid correlation of the input
    with every up-th tap of the flipped filter, the phases interleaved by a rank ≤ 4 reshape (no zeros are
    materialised or multiplied)."""
    g = f[::-1].astype(np.float32)
    n_in, k = x.shape[axis], len(g)
    out_len = up * n_in + pad[0] + pad[1] - k + 1
    q = -(-out_len // up)  # outputs per phase
    taps = -(-k // up)
    phases = []
    for r in range(up):
        s = (pad[0] - r) % up
        phases.append((np.pad(g[s::up], (0, taps - len(g[s::up]))), (r + s - pad[0]) // up))
    lo = min(c for _, c in phases)
    hi = max(c for _, c in phases) + q + taps - 1  # one past the last input sample read
    x = _pad_axis(x, -lo, hi - n_in, axis)
    c = x.shape[3]
    outs = []
    for taps_r, offset in phases:
        start = offset - lo
        part = x[:, start : start + q + taps - 1] if axis == 1 else x[:, :, start : start + q + taps - 1]
        shape = [taps, 1] if axis == 1 else [1, taps]
        kernel = np.tile(taps_r.reshape(shape)[:, :, None, None], [1, 1, c, 1])
        outs.append(tf.nn.depthwise_conv2d(part, tf.constant(kernel), [1, 1, 1, 1], "VALID"))
    _, h, w, _ = outs[0].shape
    batch = tf.shape(x)[0]
    if axis == 1:
        y = tf.concat([tf.reshape(o, [batch, h, w * c]) for o in outs], axis=2)
        y = tf.reshape(y, [batch, h * up, w, c])[:, :out_len]
    else:
        y = tf.reshape(tf.concat(outs, axis=3), [batch, h, w * up, c])[:, :, :out_len]
    return y


def _pad_axis(x: tf.Tensor, low: int, high: int, axis: int) -> tf.Tensor:
    """Zero padding (positive) or cropping (negative) of one spatial axis."""
    pads = [[0, 0]] * 4
    pads[axis] = [max(low, 0), max(high, 0)]
    x = tf.pad(x, pads)
    size = x.shape[axis]
    lo, hi = max(-low, 0), size - max(-high, 0)
    return x[:, lo:hi] if axis == 1 else x[:, :, lo:hi]


def upsample_filter(x: tf.Tensor, f: np.ndarray | None, up: int, padding: tuple[int, int]) -> tf.Tensor:
    """upfirdn2d(x, f, up, padding, gain=up²): zero insertion, pad/crop, the filter (separable taps: polyphase
    per axis; a 2-D filter: on the zero-inserted signal)."""
    if f is not None and f.ndim == 1 and up > 1:
        f = f * up  # up² over the two axes
        return _upsample_axis(_upsample_axis(x, f, up, padding, 1), f, up, padding, 2)
    if up > 1:
        x = insert_zeros(x, up)
    return fir_filter(pad_or_crop(x, *padding), f, gain=float(up * up))


@tf.autograph.experimental.do_not_convert
def filtered_lrelu(x: tf.Tensor, bias: tf.Tensor, fu: np.ndarray | None, fd: np.ndarray | None, *, up: int,
                   down: int, padding: tuple[int, int], gain: float, slope: float,
                   clamp: float | None) -> tf.Tensor:
    """x + bias, upsampled by `up` through `fu`, leaky ReLU (`slope`) times `gain`, clamped to ±clamp, then
    through `fd` and downsampled by `down`. `slope` 1 is linear (ToRGB)."""
    x = upsample_filter(x + bias, fu, up, padding)
    if slope != 1:
        x = tf.nn.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = tf.clip_by_value(x, -clamp, clamp)
    return fir_filter(x, fd, down=down)


@tf.autograph.experimental.do_not_convert
def modulated_conv2d(x: tf.Tensor, weight: tf.Tensor, styles: tf.Tensor, *, demodulate: bool,
                     input_gain: tf.Tensor) -> tf.Tensor:
    """x [N, H, W, in] convolved ('full' padding: k − 1 per side) with `weight` [k, k, in, out] modulated per
    sample by `styles` [N, in] and, with `demodulate`, pre-normalized (weights by their RMS per output
    channel, styles by their RMS over the batch, as the original) and scaled to unit output variance; inputs
    are scaled by the scalar `input_gain`. Run as scale-inputs, shared convolution, scale-outputs (what the
    original's grouped convolution computes)."""
    if demodulate:
        weight = weight * tf.math.rsqrt(tf.reduce_mean(tf.square(weight), axis=[0, 1, 2], keepdims=True))
        styles = styles * tf.math.rsqrt(tf.reduce_mean(tf.square(styles)))
    k = weight.shape[0]
    x = x * (styles * input_gain)[:, None, None, :]
    if k > 1:
        x = tf.pad(x, [[0, 0], [k - 1, k - 1], [k - 1, k - 1], [0, 0]])
    x = tf.nn.conv2d(x, weight, strides=1, padding="VALID")
    if demodulate:
        w_sq = tf.reduce_sum(tf.square(weight), axis=[0, 1])  # [in, out]
        d = tf.math.rsqrt(tf.matmul(tf.square(styles), w_sq) + 1e-8)
        x = x * d[:, None, None, :]
    return x
