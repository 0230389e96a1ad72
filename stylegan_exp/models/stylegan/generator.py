"""StyleGAN's synthesis network (G_synthesis), grown progressively by level, and its generator."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.nets.generator import Generator, Mapping
from stylegan_exp.nets.layers import Conv2D, LayerEpilogue, blur2d, lerp, no_fade, upscale2d
from stylegan_exp.resolution import log2_int


class SynthesisBlock(tf.Module):
    """One resolution of the synthesis network: (upscale) conv + epilogue, conv + epilogue; the 4×4 block's
    constant (and every noise map) has the network's aspect."""

    def __init__(self, level: int, model: StyleGANConfig, num_channels: int, name: str | None = None,
                 aspect: Aspect = SQUARE) -> None:
        super().__init__(name=name)
        self.level = level
        res = aspect.shape(2**level)
        fmaps = model.nf(level - 1)
        if level == 2:
            self.const = tf.Variable(tf.ones([1, *res, fmaps]), name="const")
            self.conv0 = None
        else:
            self.conv0 = Conv2D(model.nf(level - 2), fmaps, 3, scaling="up",
                                upscale_first=2**level < model.fused_scale_min_res)
        self.epi0 = LayerEpilogue(fmaps, res, model.dlatent_size, model.use_noise)
        self.conv1 = Conv2D(fmaps, fmaps, 3)
        self.epi1 = LayerEpilogue(fmaps, res, model.dlatent_size, model.use_noise)
        self.torgb = Conv2D(fmaps, num_channels, 1, gain=1.0, use_bias=True)

    def __call__(self, x: tf.Tensor | None, w: Sequence[tf.Tensor], randomize_noise: bool) -> tf.Tensor:
        """w: the two style inputs of this resolution, [N, dlatent] each."""
        x = tf.tile(self.const, [tf.shape(w[0])[0], 1, 1, 1]) if self.conv0 is None else blur2d(self.conv0(x))
        x = self.epi0(x, w[0], randomize_noise)
        x = self.conv1(x)
        return self.epi1(x, w[1], randomize_noise)


class Synthesis(tf.Module):
    """w per layer → image, grown progressively: `level` picks the output resolution 2**level."""

    def __init__(self, model: StyleGANConfig, resolution: int, num_channels: int = 3,
                 name: str | None = None, aspect: Aspect = SQUARE) -> None:
        super().__init__(name=name)
        self.blocks = [SynthesisBlock(level, model, num_channels, aspect=aspect)
                       for level in range(2, log2_int(resolution) + 1)]

    def __call__(self, dlatents: tf.Tensor, level: int, fade: tf.Tensor | float = 0.0,
                 randomize_noise: bool = True) -> tf.Tensor:
        """Images at 2**level; `fade` blends in the upsampled previous level (lod - floor(lod))."""
        x = None
        prev = None
        styles = tf.unstack(dlatents, axis=1)  # one gradient Pack instead of a StridedSliceGrad per layer
        for block in self.blocks[: level - 1]:
            prev = x
            x = block(x, styles[2 * block.level - 4 : 2 * block.level - 2], randomize_noise)
        images = self.blocks[level - 2].torgb(x)
        if level > 2 and not no_fade(fade):
            lower = upscale2d(self.blocks[level - 3].torgb(prev))
            images = lerp(images, lower, fade)
        return images


class StyleGANGenerator(Generator):
    """G_style: the mapping network and StyleGAN's progressively grown synthesis network."""

    MAPPING = Mapping
    SYNTHESIS = Synthesis
