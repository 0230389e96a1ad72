"""StyleGAN2 building blocks (NHWC), with variable shapes that map one to one onto the original's.

What differs from StyleGAN's layers (nets/layers.py): every weight uses gain 1 in its equalized-lr scale and
the activation's gain comes after bias and leaky ReLU (the original's `fused_bias_act`: lrelu(x + b)·√2);
resampling uses the FIR filters of `fir`; the synthesis convolutions are modulated by a per-sample style
(bias initialised so the scale starts at 1) and demodulated to unit output variance; noise is scaled by one
learned strength per layer (NoiseInput with per_channel=False).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from stylegan_exp.nets.fir import conv_downsample2d, upsample_conv2d
from stylegan_exp.nets.layers import SQRT2, Conv2D, Dense, NoiseInput, lrelu, runtime_scale


def lrelu_gain(x: tf.Tensor) -> tf.Tensor:
    """Leaky ReLU 0.2 times its √2 gain (applied after the bias)."""
    return lrelu(x) * tf.cast(SQRT2, x.dtype)


def clamp(x: tf.Tensor, limit: float | None) -> tf.Tensor:
    """stylegan2-ada's conv_clamp: a layer's output (after bias, activation and gain) limited to ±limit."""
    return x if limit is None else tf.clip_by_value(x, -limit, limit)


class FIRConv2D(Conv2D):
    """Gain-1 k×k convolution, optionally fused with FIR up- or downsampling (`resample` 'up' / 'down')."""

    def __init__(self, fan_in_fmaps: int, fmaps: int, kernel: int, *, taps: Sequence[int],
                 resample: str | None = None, use_bias: bool = True, name: str | None = None) -> None:
        super().__init__(fan_in_fmaps, fmaps, kernel, gain=1.0, use_bias=use_bias, name=name)
        if resample not in (None, "up", "down"):
            raise ValueError(f"FIRConv2D resample must be None, 'up' or 'down', got {resample!r}")
        self.resample, self.taps = resample, list(taps)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.resample is None:
            return super().__call__(x)
        w = self.weight * self.scale
        resample = upsample_conv2d if self.resample == "up" else conv_downsample2d
        y = resample(x, w, self.taps)
        return y if self.bias is None else y + self.bias


class ModulatedConv2D(tf.Module):
    """k×k convolution whose input channels are scaled per sample by a style s = A(w) + 1 and, with
    `demodulate`, whose outputs are divided by the norm of the modulated weights.

    The original's fused form (a grouped convolution with one weight per sample) equals scaling the input
    activations by s, convolving with the shared weight and scaling the outputs by d; that is what runs here
    (grouped convolutions are slow or missing on CPUs). d = 1/√(Σ_{k,k,i} (w s_i)² + 1e-8) is computed as
    (s²)·(Σ_{k,k} w²), without materialising a weight per sample, and in float32."""

    def __init__(self, dlatent_size: int, fan_in_fmaps: int, fmaps: int, kernel: int, *,
                 demodulate: bool = True, up: bool = False, taps: Sequence[int] = (1, 3, 3, 1),
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.kernel, self.demodulate, self.up, self.taps = kernel, demodulate, up, list(taps)
        self.scale = runtime_scale(kernel * kernel * fan_in_fmaps, gain=1.0)
        self.weight = tf.Variable(tf.random.normal([kernel, kernel, fan_in_fmaps, fmaps]), name="weight")
        self.style = Dense(dlatent_size, fan_in_fmaps, gain=1.0)

    def convolve(self, x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        """x [N, H, W, in] with style input w [N, dlatent] → [N, H', W', out] (no bias)."""
        s = self.style(w) + 1.0
        weight = self.weight * self.scale
        x = x * s[:, None, None, :]
        if self.up:
            x = upsample_conv2d(x, weight, self.taps)
        else:
            x = tf.nn.conv2d(x, weight, strides=1, padding="SAME")
        if self.demodulate:
            w_sq = tf.reduce_sum(tf.square(tf.cast(weight, tf.float32)), axis=[0, 1])
            d = tf.math.rsqrt(tf.matmul(tf.square(tf.cast(s, tf.float32)), w_sq) + 1e-8)
            x = x * tf.cast(d, x.dtype)[:, None, None, :]
        return x


class SynthesisLayer(ModulatedConv2D):
    """Modulated, demodulated convolution (optionally upsampling) → noise → bias → lrelu·√2."""

    def __init__(self, dlatent_size: int, fan_in_fmaps: int, fmaps: int, size: int, *, use_noise: bool,
                 up: bool = False, taps: Sequence[int] = (1, 3, 3, 1), conv_clamp: float | None = None,
                 name: str | None = None) -> None:
        super().__init__(dlatent_size, fan_in_fmaps, fmaps, 3, up=up, taps=taps, name=name)
        self.noise = NoiseInput(fmaps, size, per_channel=False) if use_noise else None
        self.bias = tf.Variable(tf.zeros([fmaps]), name="bias")
        self.conv_clamp = conv_clamp

    def __call__(self, x: tf.Tensor, w: tf.Tensor, randomize_noise: bool) -> tf.Tensor:
        x = self.convolve(x, w)
        if self.noise is not None:
            x = self.noise(x, randomize_noise)
        return clamp(lrelu_gain(x + self.bias), self.conv_clamp)


class ToRGB(ModulatedConv2D):
    """1×1 modulated convolution without demodulation, plus bias: a resolution's image contribution."""

    def __init__(self, dlatent_size: int, fan_in_fmaps: int, channels: int, conv_clamp: float | None = None,
                 name: str | None = None) -> None:
        super().__init__(dlatent_size, fan_in_fmaps, channels, 1, demodulate=False, name=name)
        self.bias = tf.Variable(tf.zeros([channels]), name="bias")
        self.conv_clamp = conv_clamp

    def __call__(self, x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        return clamp(self.convolve(x, w) + self.bias, self.conv_clamp)
