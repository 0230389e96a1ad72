"""The original `D_basic` discriminator with minibatch stddev, grown progressively by level."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.nets.layers import (
    Conv2D,
    Dense,
    blur2d,
    downscale2d,
    lerp,
    lrelu,
    minibatch_stddev,
    no_fade,
)
from stylegan_exp.nets.network import Discriminator


class DiscriminatorBlock(tf.Module):
    """conv → blur → conv + 2× downscale; the 4×4 block (4×8 at 1:2 …) ends in mbstd, conv, dense, dense →
    score."""

    def __init__(self, level: int, model: StyleGANConfig, num_channels: int, name: str | None = None,
                 aspect: Aspect = SQUARE, outputs: int = 1) -> None:
        super().__init__(name=name)
        self.level = level
        self.fromrgb = Conv2D(num_channels, model.nf(level - 1), 1, use_bias=True)
        self.mbstd_group_size = model.mbstd_group_size
        self.mbstd_num_features = model.mbstd_num_features
        if level >= 3:
            # Below fused_scale_min_res the original convolves, then box-downscales: the same function.
            self.conv0 = Conv2D(model.nf(level - 1), model.nf(level - 1), 3, use_bias=True)
            self.conv1 = Conv2D(model.nf(level - 1), model.nf(level - 2), 3, use_bias=True, scaling="down")
        else:
            extra = model.mbstd_num_features if model.mbstd_group_size > 1 else 0
            self.conv = Conv2D(model.nf(1) + extra, model.nf(1), 3, use_bias=True)
            self.dense0 = Dense(model.nf(1) * 16 * aspect.width * aspect.height, model.nf(0))
            self.dense1 = Dense(model.nf(0), outputs, gain=1.0)

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.level >= 3:
            x = lrelu(self.conv0(x))
            x = blur2d(x)
            return lrelu(self.conv1(x))
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        x = lrelu(self.conv(x))
        x = lrelu(self.dense0(x))
        return self.dense1(x)


class StyleGANDiscriminator(Discriminator):
    """Images at 2**level → one score each; `fade` blends in the downscaled image's lower-level path."""

    def __init__(self, model: StyleGANConfig, resolution: int, num_channels: int = 3,
                 name: str | None = None, *, aspect: Aspect = SQUARE, c_dim: int = 0) -> None:
        super().__init__(model, resolution, num_channels, name, aspect=aspect)
        outputs = self.condition_on(c_dim)
        self.blocks = [DiscriminatorBlock(level, model, num_channels, aspect=aspect,
                                          outputs=outputs if level == 2 else 1)
                       for level in range(2, self.resolution_log2 + 1)]

    def __call__(self, images: tf.Tensor, level: int | None = None,
                 fade: tf.Tensor | float = 0.0, c: tf.Tensor | None = None) -> tf.Tensor:
        """Scores of images at 2**level, or of full-size images at `lod` when no level is named."""
        if level is None:
            images, level, fade = self._as_trained(images)
        x, _ = self._trunk(images, level, fade)
        return self.score(self.blocks[0](x), c)

    def features(self, images: tf.Tensor) -> list[tf.Tensor]:
        """Activations after every block above 4×4 for full-size images (at `lod`): what a feature-matching
        loss compares (inversion)."""
        return self._trunk(*self._as_trained(images))[1]

    def _as_trained(self, images: tf.Tensor) -> tuple[tf.Tensor, int, float]:
        """Full-size images box-filtered to the level of `lod`, as the original D sees them while growing."""
        level, fade = self.level_and_fade()
        return downscale2d(images, 2 ** (self.resolution_log2 - level)), level, fade

    def _trunk(self, images: tf.Tensor, level: int,
               fade: tf.Tensor | float) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The 4×4 block's input, and the activations after each block above it (the lower level's path
        faded in after the first)."""
        block = self.blocks[level - 2]
        x = lrelu(block.fromrgb(images))
        found = []
        if level > 2:
            x = block(x)
            if not no_fade(fade):
                x = lerp(x, lrelu(self.blocks[level - 3].fromrgb(downscale2d(images))), fade)
            found.append(x)
            for block in reversed(self.blocks[1 : level - 2]):
                x = block(x)
                found.append(x)
        return x, found
