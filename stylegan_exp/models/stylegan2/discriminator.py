"""The StyleGAN2 discriminator (D_stylegan2): residual ('resnet', config F) or skip blocks with FIR
downsampling, then minibatch stddev, conv, dense and the output layer at 4×4. No progressive growing."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology
from stylegan_exp.models.stylegan2.generator import RESIDUAL_SCALE
from stylegan_exp.models.stylegan2.layers import FIRConv2D, clamp, lrelu_gain
from stylegan_exp.nets.fir import downsample2d
from stylegan_exp.nets.layers import Dense, minibatch_stddev
from stylegan_exp.nets.network import Discriminator


class StyleGAN2DiscriminatorBlock(tf.Module):
    """Resolution 2**level > 4: (fromRGB of the image for 'skip' or at the input resolution), conv,
    downsampling conv, and for 'resnet' a 1×1 downsampling shortcut."""

    def __init__(self, level: int, model: StyleGAN2Config, num_channels: int, first: bool,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.arch = Topology(model.d_architecture)
        self.taps, self.conv_clamp = list(model.resample_kernel), model.conv_clamp
        fmaps, out, taps = model.nf(level - 1), model.nf(level - 2), model.resample_kernel
        self.fromrgb = (FIRConv2D(num_channels, fmaps, 1, taps=taps)
                        if self.arch == Topology.skip or first else None)
        self.conv0 = FIRConv2D(fmaps, fmaps, 3, taps=taps)
        self.conv1 = FIRConv2D(fmaps, out, 3, taps=taps, resample="down")
        self.skip = (FIRConv2D(fmaps, out, 1, taps=taps, resample="down", use_bias=False)
                     if self.arch == Topology.resnet else None)

    def __call__(self, x: tf.Tensor | None, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """x: features (None before the first fromRGB), y: the image at this resolution."""
        if self.fromrgb is not None:
            rgb = clamp(lrelu_gain(self.fromrgb(y)), self.conv_clamp)
            x = rgb if x is None else x + rgb
        shortcut = x
        x = clamp(lrelu_gain(self.conv0(x)), self.conv_clamp)
        x = clamp(lrelu_gain(self.conv1(x)), self.conv_clamp)
        if self.skip is not None:
            x = (x + self.skip(shortcut)) * tf.cast(RESIDUAL_SCALE, x.dtype)
        if self.arch == Topology.skip:
            y = downsample2d(y, self.taps)
        return x, y


class StyleGAN2DiscriminatorOutput(tf.Module):
    """4×4 (4×8 at 1:2 …): (fromRGB for 'skip'), minibatch stddev, 3×3 conv, dense, and the 1-unit output
    layer."""

    def __init__(self, model: StyleGAN2Config, num_channels: int, name: str | None = None,
                 aspect: Aspect = SQUARE, outputs: int = 1) -> None:
        super().__init__(name=name)
        taps, self.conv_clamp = model.resample_kernel, model.conv_clamp
        self.mbstd_group_size, self.mbstd_num_features = model.mbstd_group_size, model.mbstd_num_features
        self.fromrgb = (FIRConv2D(num_channels, model.nf(1), 1, taps=taps)
                        if Topology(model.d_architecture) == Topology.skip else None)
        extra = model.mbstd_num_features if model.mbstd_group_size > 1 else 0
        self.conv = FIRConv2D(model.nf(1) + extra, model.nf(1), 3, taps=taps)
        self.dense0 = Dense(model.nf(1) * 16 * aspect.width * aspect.height, model.nf(0), gain=1.0)
        self.output = Dense(model.nf(0), outputs, gain=1.0)

    def __call__(self, x: tf.Tensor | None, y: tf.Tensor) -> tf.Tensor:
        if self.fromrgb is not None:
            rgb = clamp(lrelu_gain(self.fromrgb(y)), self.conv_clamp)
            x = rgb if x is None else x + rgb
        if self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        x = clamp(lrelu_gain(self.conv(x)), self.conv_clamp)
        x = lrelu_gain(self.dense0(x))
        return self.output(x)


class StyleGAN2Discriminator(Discriminator):
    """Images at full resolution → one score each. `blocks[level - 2]` works at 2**level (blocks[0] is the
    4×4 output block), as in StyleGAN's D."""

    def __init__(self, model: StyleGAN2Config, resolution: int, num_channels: int = 3,
                 name: str | None = None, *, aspect: Aspect = SQUARE, c_dim: int = 0) -> None:
        super().__init__(model, resolution, num_channels, name, aspect=aspect)
        outputs = self.condition_on(c_dim)
        top = self.resolution_log2
        if top < 3 and Topology(model.d_architecture) == Topology.resnet:
            raise ValueError("StyleGAN2's resnet discriminator needs a resolution of at least 8")
        self.blocks = [StyleGAN2DiscriminatorOutput(model, num_channels, aspect=aspect, outputs=outputs)]
        self.blocks += [StyleGAN2DiscriminatorBlock(level, model, num_channels, level == top)
                        for level in range(3, top + 1)]

    def _blocks(self, images: tf.Tensor) -> tuple[list[tf.Tensor], tf.Tensor]:
        x, y, found = None, images, []
        for block in reversed(self.blocks[1:]):
            x, y = block(x, y)
            found.append(x)
        return found, y

    def __call__(self, images: tf.Tensor, level: int | None = None,
                 fade: tf.Tensor | float = 0.0, c: tf.Tensor | None = None) -> tf.Tensor:
        """`level`/`fade` exist for the shared D interface: StyleGAN2 only works at full resolution."""
        if level not in (None, self.resolution_log2):
            raise ValueError(f"StyleGAN2's D scores {self.resolution}² images only, not level {level}")
        found, y = self._blocks(images)
        return self.score(self.blocks[0](found[-1] if found else None, y), c)

    def features(self, images: tf.Tensor) -> list[tf.Tensor]:
        """Activations after every block above 4×4: what a feature-matching loss compares (inversion)."""
        return self._blocks(images)[0]
