"""The discriminator StyleGAN3 trains with: stylegan2-ada's residual D (networks_stylegan2.Discriminator,
architecture 'resnet'), channels min(cbase / res, cmax), activations clamped at `conv_clamp`.

Per block (sg2-ada's DiscriminatorBlock): fromRGB (top block only), conv0, a downsampling conv1 at gain √½ and
a 1×1 downsampling skip at gain √½, summed; the 4×4 epilogue: minibatch stddev, conv, fc, out. Variables in
this package's layouts (convolutions [k, k, in, out], dense [in, out]; fc's rows in NHWC order).
"""

from __future__ import annotations

import math

import tensorflow as tf

from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.nets.fir import conv_downsample2d
from stylegan_exp.nets.layers import SQRT2, Conv2D, Dense, lrelu, minibatch_stddev
from stylegan_exp.nets.network import Discriminator

RESAMPLE = (1, 3, 3, 1)
SQRT_HALF = math.sqrt(0.5)


@tf.autograph.experimental.do_not_convert
def act(x: tf.Tensor, clamp: float | None, gain: float = 1.0) -> tf.Tensor:
    """sg2-ada's bias_act for a conv layer: lrelu·√2·gain, clamped at clamp·gain."""
    x = lrelu(x) * (SQRT2 * gain)
    return x if clamp is None else tf.clip_by_value(x, -clamp * gain, clamp * gain)


class DownConv(Conv2D):
    """Gain-1 k×k convolution after the [1, 3, 3, 1] low-pass, stride 2 (sg2-ada's Conv2dLayer, down=2)."""

    @tf.autograph.experimental.do_not_convert
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        y = conv_downsample2d(x, self.weight * self.scale, RESAMPLE)
        return y if self.bias is None else y + self.bias


class DiscriminatorBlock(tf.Module):
    """Resolution `res` > 4: x (or fromRGB of the image, at the top) → (skip·√½ + conv1(conv0(x))·√½)."""

    def __init__(self, model: StyleGAN3Config, res: int, num_channels: int, top: bool,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        tmp, out = model.nf_d(res), model.nf_d(res // 2)
        self.clamp = model.conv_clamp
        self.fromrgb = Conv2D(num_channels, tmp, 1, gain=1.0, use_bias=True) if top else None
        self.conv0 = Conv2D(tmp, tmp, 3, gain=1.0, use_bias=True)
        self.conv1 = DownConv(tmp, out, 3, gain=1.0, use_bias=True)
        self.skip = DownConv(tmp, out, 1, gain=1.0, use_bias=False)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, x: tf.Tensor | None, images: tf.Tensor) -> tf.Tensor:
        if self.fromrgb is not None:
            x = act(self.fromrgb(images), self.clamp)
        y = self.skip(x) * SQRT_HALF
        x = act(self.conv0(x), self.clamp)
        x = act(self.conv1(x), self.clamp, SQRT_HALF)
        return x + y


class DiscriminatorEpilogue(tf.Module):
    """4×4: minibatch stddev, 3×3 conv, fc, and the 1-unit output."""

    def __init__(self, model: StyleGAN3Config, name: str | None = None) -> None:
        super().__init__(name=name)
        c = model.nf_d(4)
        self.clamp = model.conv_clamp
        self.mbstd_group_size, self.mbstd_num_features = model.mbstd_group_size, model.mbstd_num_features
        extra = model.mbstd_num_features if model.mbstd_group_size > 1 else 0
        self.conv = Conv2D(c + extra, c, 3, gain=1.0, use_bias=True)
        self.fc = Dense(c * 16, c, gain=1.0)
        self.out = Dense(c, 1, gain=1.0)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        x = act(self.conv(x), self.clamp)
        x = lrelu(self.fc(x)) * SQRT2
        return self.out(x)


class StyleGAN3Discriminator(Discriminator):
    """Images at full resolution → one score each. `blocks[0]` is the 4×4 epilogue, `blocks[level - 2]` the
    block at 2**level (the original's `b<res>`)."""

    def __init__(self, model: StyleGAN3Config, resolution: int, num_channels: int = 3,
                 name: str | None = None) -> None:
        super().__init__(model, resolution, num_channels, name)
        top = self.resolution_log2
        if top < 3:
            raise ValueError("StyleGAN3's discriminator needs a resolution of at least 8")
        self.blocks = [DiscriminatorEpilogue(model)]
        self.blocks += [DiscriminatorBlock(model, 2**level, num_channels, level == top)
                        for level in range(3, top + 1)]

    @tf.autograph.experimental.do_not_convert
    def _trunk(self, images: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        x, found = None, []
        for block in reversed(self.blocks[1:]):
            x = block(x, images)
            found.append(x)
        return x, found

    @tf.autograph.experimental.do_not_convert
    def __call__(self, images: tf.Tensor, level: int | None = None,
                 fade: tf.Tensor | float = 0.0) -> tf.Tensor:
        """`level`/`fade` exist for the shared D interface: StyleGAN3's D works at full resolution only."""
        if level not in (None, self.resolution_log2):
            raise ValueError(f"StyleGAN3's D scores {self.resolution}² images only, not level {level}")
        x, _ = self._trunk(images)
        return self.blocks[0](x)[:, 0]

    def features(self, images: tf.Tensor) -> list[tf.Tensor]:
        """Activations after every block above 4×4: what a feature-matching loss compares (inversion)."""
        return self._trunk(images)[1]
