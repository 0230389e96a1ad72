"""The StyleGAN2 generator (G_main with G_mapping + G_synthesis_stylegan2): our Generator's w handling
(w_avg, truncation, style mixing) around StyleGAN2's mapping and synthesis networks, at full resolution."""

from __future__ import annotations

import math

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology
from stylegan_exp.models.stylegan2.layers import FIRConv2D, SynthesisLayer, ToRGB
from stylegan_exp.nets.fir import upsample2d
from stylegan_exp.nets.generator import Generator, Mapping
from stylegan_exp.nets.layers import SQRT2, lrelu, runtime_scale
from stylegan_exp.resolution import log2_int

RESIDUAL_SCALE = 1.0 / math.sqrt(2.0)  # (x + shortcut) / √2 keeps a residual block's output variance


class StyleGAN2Mapping(Mapping):
    """StyleGAN's mapping layers with StyleGAN2's gain convention: weights at gain 1, lrelu(x + b)·√2."""

    def __init__(self, model: StyleGAN2Config, name: str | None = None, c_dim: int = 0) -> None:
        super().__init__(model, name=name, c_dim=c_dim)
        for layer in self.dense:
            layer.scale = runtime_scale(int(layer.weight.shape[0]), gain=1.0, lrmul=model.mapping_lrmul)

    def __call__(self, z: tf.Tensor, c: tf.Tensor | None = None) -> tf.Tensor:
        x = self.inputs(z, c)
        for layer in self.dense:
            x = lrelu(layer(x)) * SQRT2
        return x


class StyleGAN2SynthesisBlock(tf.Module):
    """One resolution: (4×4: learned constant, conv | above: upsampling conv, conv, and for 'resnet' a 1×1
    upsampling shortcut), then, for 'skip' (or at the output resolution), this resolution's toRGB."""

    def __init__(self, level: int, model: StyleGAN2Config, num_channels: int, last: bool,
                 name: str | None = None, aspect: Aspect = SQUARE) -> None:
        super().__init__(name=name)
        self.level = level
        self.arch = Topology(model.g_architecture)
        size, fmaps, dl = aspect.shape(2**level), model.nf(level - 1), model.dlatent_size
        taps = model.resample_kernel
        clamp = model.conv_clamp
        if level == 2:
            self.const = tf.Variable(tf.random.normal([1, *size, fmaps]), name="const")
            self.conv = SynthesisLayer(dl, fmaps, fmaps, size, use_noise=model.use_noise, taps=taps,
                                       conv_clamp=clamp)
        else:
            fan_in = model.nf(level - 2)
            noise = model.use_noise
            self.conv0 = SynthesisLayer(dl, fan_in, fmaps, size, use_noise=noise, up=True, taps=taps,
                                        conv_clamp=clamp)
            self.conv1 = SynthesisLayer(dl, fmaps, fmaps, size, use_noise=noise, taps=taps, conv_clamp=clamp)
            if self.arch == Topology.resnet:
                self.skip = FIRConv2D(fan_in, fmaps, 1, taps=taps, resample="up", use_bias=False)
        self.torgb = (ToRGB(dl, fmaps, num_channels, clamp) if self.arch == Topology.skip or last
                      else None)
        self.taps = list(taps)

    def __call__(self, x: tf.Tensor | None, y: tf.Tensor | None, dlatents: tf.Tensor,
                 randomize_noise: bool) -> tuple[tf.Tensor, tf.Tensor | None]:
        """x: features, y: image so far; style inputs are layers 2·level-5 … 2·level-3 of dlatents."""
        first = 2 * self.level - 5
        if self.level == 2:
            x = tf.tile(self.const, [tf.shape(dlatents)[0], 1, 1, 1])
            x = self.conv(x, dlatents[:, 0], randomize_noise)
        else:
            shortcut = x
            x = self.conv0(x, dlatents[:, first], randomize_noise)
            x = self.conv1(x, dlatents[:, first + 1], randomize_noise)
            if self.arch == Topology.resnet:
                x = (x + self.skip(shortcut)) * tf.cast(RESIDUAL_SCALE, x.dtype)
            if self.arch == Topology.skip:
                y = upsample2d(y, self.taps)
        if self.torgb is not None:
            rgb = self.torgb(x, dlatents[:, first + 2])
            y = rgb if y is None else y + rgb
        return x, y


class StyleGAN2Synthesis(tf.Module):
    """w per layer [N, 2·log2(res) - 2, dlatent] → image at the full resolution (no progressive growing)."""

    def __init__(self, model: StyleGAN2Config, resolution: int, num_channels: int = 3,
                 name: str | None = None, aspect: Aspect = SQUARE) -> None:
        super().__init__(name=name)
        self.level_max = log2_int(resolution)
        self.blocks = [StyleGAN2SynthesisBlock(level, model, num_channels, level == self.level_max,
                                               aspect=aspect)
                       for level in range(2, self.level_max + 1)]

    def __call__(self, dlatents: tf.Tensor, level: int | None = None, fade: tf.Tensor | float = 0.0,
                 randomize_noise: bool = True) -> tf.Tensor:
        """`level`/`fade` exist for the shared G interface: StyleGAN2 only works at full resolution."""
        if level not in (None, self.level_max):
            raise ValueError(f"StyleGAN2 synthesizes {2**self.level_max}² only, not level {level}")
        x = y = None
        for block in self.blocks:
            x, y = block(x, y, dlatents, randomize_noise)
        return y


class StyleGAN2Generator(Generator):
    """G_main: StyleGAN2's mapping and synthesis with our w_avg tracking, truncation and style mixing."""

    MAPPING = StyleGAN2Mapping
    SYNTHESIS = StyleGAN2Synthesis
    NOISE_REGULARIZED = True
