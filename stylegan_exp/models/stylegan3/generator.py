"""The StyleGAN3 generator (networks_stylegan3.py: MappingNetwork + SynthesisNetwork): our Generator's w
handling (w_avg, truncation) around StyleGAN3's 2-layer mapping network and alias-free synthesis network.

Variables keep the original's structure (`synthesis/input/{weight, affine, transform, freqs, phases}`,
`synthesis/layers/<idx>/{affine, weight, bias, magnitude_ema}` for the original's `L<idx>_<size>_<channels>`)
in this package's layouts (dense [in, out], convolutions [k, k, in, out]); the up/down filters are designed
from the config (`filters`), not stored. Every layer runs in float32 (the original's fp16 layers too).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.models.stylegan3.filters import design_lowpass
from stylegan_exp.models.stylegan3.layout import InputSpec, LayerSpec, synthesis_layout
from stylegan_exp.models.stylegan3.ops import filtered_lrelu, modulated_conv2d
from stylegan_exp.nets.generator import Generator, Mapping
from stylegan_exp.nets.layers import SQRT2, Dense, lrelu, pixel_norm, runtime_scale
from stylegan_exp.resolution import log2_int


def layout_of(model: StyleGAN3Config, resolution: int,
              num_channels: int) -> tuple[InputSpec, list[LayerSpec]]:
    base, cmax = model.channels_g()
    return synthesis_layout(resolution, num_channels, channel_base=base, channel_max=cmax,
                            num_layers=model.num_layers, num_critical=model.num_critical,
                            first_cutoff=model.first_cutoff, first_stopband=model.first_stopband,
                            last_stopband_rel=model.last_stopband_rel, margin_size=model.margin_size,
                            conv_kernel=model.conv_kernel, filter_size=model.filter_size,
                            lrelu_upsampling=model.lrelu_upsampling,
                            use_radial_filters=model.use_radial_filters)


def magnitude_ema_beta(minibatch: int, half_life_kimg: float) -> float:
    """The per-step decay of the layers' input magnitude EMA: 0.5 ** (batch / half-life), as train.py's."""
    return 0.5 ** (minibatch / (half_life_kimg * 1000.0))


def make_transform(translate: tuple[float, float], angle: float) -> np.ndarray:
    """The 3×3 image transform of a translation (in image widths, as gen_images.py's `--translate`) and a
    rotation by `angle` degrees."""
    s, c = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0.0, 0.0, 1.0]])


class StyleGAN3Mapping(Mapping):
    """z → w: normalized z through `mapping_layers` layers lrelu(x·W/√fan_in·lrmul + b·lrmul)·√2."""

    def __init__(self, model: StyleGAN3Config, name: str | None = None) -> None:
        super().__init__(model, name=name)
        for layer in self.dense:
            layer.scale = runtime_scale(int(layer.weight.shape[0]), gain=1.0, lrmul=model.mapping_lrmul)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, z: tf.Tensor) -> tf.Tensor:
        x = pixel_norm(z)
        for layer in self.dense:
            x = lrelu(layer(x)) * SQRT2
        return x


@tf.autograph.experimental.do_not_convert
def rotation_translation(t: tf.Tensor) -> tf.Tensor:
    """[N, 4] affine outputs (cos, sin, tx, ty), rotation part normalized → [N, 3, 3] inverse rotation after
    inverse translation, as the original's m_r @ m_t."""
    t = t / tf.norm(t[:, :2], axis=1, keepdims=True)
    c, s, tx, ty = tf.unstack(t, axis=1)
    zero, one = tf.zeros_like(c), tf.ones_like(c)
    rows = [tf.stack([c, -s, -c * tx + s * ty], axis=1), tf.stack([s, c, -s * tx - c * ty], axis=1),
            tf.stack([zero, zero, one], axis=1)]
    return tf.stack(rows, axis=1)


class SynthesisInput(tf.Module):
    """Fourier features: `channels` sinusoids of fixed random frequencies (inside a disc of radius
    `bandwidth`) and phases, rotated and translated per sample by an affine of w (then by the user's inverse
    `transform`), dampened out of band, mixed by a learned channels × channels matrix."""

    def __init__(self, dlatent_size: int, spec: InputSpec, name: str | None = None) -> None:
        super().__init__(name=name)
        c = spec.channels
        self.spec = spec
        freqs = tf.random.normal([c, 2])
        radii = tf.sqrt(tf.reduce_sum(tf.square(freqs), axis=1, keepdims=True))
        freqs = freqs / (radii * tf.exp(tf.square(radii)) ** 0.25) * spec.bandwidth
        self.weight = tf.Variable(tf.random.normal([c, c]), name="weight")  # [in, out]
        self.affine = Dense(dlatent_size, 4, gain=1.0)
        self.affine.weight.assign(tf.zeros_like(self.affine.weight))
        self.affine.bias.assign([1.0, 0.0, 0.0, 0.0])
        self.transform = tf.Variable(tf.eye(3), trainable=False, name="transform")
        self.freqs = tf.Variable(freqs, trainable=False, name="freqs")
        self.phases = tf.Variable(tf.random.uniform([c]) - 0.5, trainable=False, name="phases")
        coords = ((2 * np.arange(spec.size) + 1) / spec.size - 1) * 0.5 * spec.size / spec.sampling_rate
        self.coords = coords.astype(np.float32)  # affine_grid's pixel centres (align_corners=False)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, w: tf.Tensor) -> tf.Tensor:
        t = tf.matmul(rotation_translation(self.affine(w)), self.transform)
        # frequencies (f_x, f_y) as a row vector times the transform's 2×2 part, phases shifted by f · its
        # translation (elementwise: einsum's lowering breaks TFLite's dynamic batch)
        f0, f1 = self.freqs[None, :, 0], self.freqs[None, :, 1]
        phases = self.phases + f0 * t[:, 0, 2:3] + f1 * t[:, 1, 2:3]
        fx = f0 * t[:, 0, 0:1] + f1 * t[:, 1, 0:1]
        fy = f0 * t[:, 0, 1:2] + f1 * t[:, 1, 1:2]
        bw, rate = self.spec.bandwidth, self.spec.sampling_rate
        amplitudes = tf.clip_by_value(1 - (tf.sqrt(fx * fx + fy * fy) - bw) / (rate / 2 - bw), 0.0, 1.0)
        g = tf.constant(self.coords)
        x = (g[None, None, :, None] * fx[:, None, None, :] + g[None, :, None, None] * fy[:, None, None, :]
             + phases[:, None, None, :])
        x = tf.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        weight = self.weight / math.sqrt(self.spec.channels)
        return tf.nn.conv2d(x, weight[None, None], strides=1, padding="VALID")


class SynthesisLayer(tf.Module):
    """Modulated convolution (demodulated, except ToRGB) of the input scaled by 1/√(its magnitude EMA), then
    the filtered leaky ReLU that resamples from the input's to the output's sampling rate."""

    def __init__(self, dlatent_size: int, spec: LayerSpec, conv_clamp: float | None,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.spec, self.conv_clamp = spec, conv_clamp
        k = spec.conv_kernel
        self.affine = Dense(dlatent_size, spec.in_channels, gain=1.0)
        self.affine.bias.assign(tf.ones_like(self.affine.bias))
        shape = [k, k, spec.in_channels, spec.out_channels]
        self.weight = tf.Variable(tf.random.normal(shape), name="weight")
        self.bias = tf.Variable(tf.zeros([spec.out_channels]), name="bias")
        self.magnitude_ema = tf.Variable(1.0, trainable=False, name="magnitude_ema")
        self.up_filter = design_lowpass(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2,
                                        spec.tmp_sampling_rate)
        self.down_filter = design_lowpass(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                                          spec.tmp_sampling_rate, radial=spec.down_radial)

    @tf.autograph.experimental.do_not_convert
    def __call__(self, x: tf.Tensor, w: tf.Tensor, ema_beta: tf.Tensor | None = None) -> tf.Tensor:
        """`ema_beta` (training's D step): first move the magnitude EMA toward this batch's mean x²."""
        spec = self.spec
        if ema_beta is not None:
            magnitude = tf.reduce_mean(tf.square(x))
            self.magnitude_ema.assign(magnitude + (self.magnitude_ema - magnitude) * ema_beta)
        styles = self.affine(w)
        if spec.is_torgb:
            styles = styles * (1 / math.sqrt(spec.in_channels * spec.conv_kernel**2))
        x = modulated_conv2d(x, self.weight, styles, demodulate=not spec.is_torgb,
                             input_gain=tf.math.rsqrt(self.magnitude_ema))
        return filtered_lrelu(x, self.bias, self.up_filter, self.down_filter, up=spec.up, down=spec.down,
                              padding=spec.padding, gain=1.0 if spec.is_torgb else SQRT2,
                              slope=1.0 if spec.is_torgb else 0.2, clamp=self.conv_clamp)


class StyleGAN3Synthesis(tf.Module):
    """w per layer [N, num_layers + 2, dlatent] → image at the full resolution: the Fourier input takes the
    first w, each layer (the last is ToRGB) one more; the output is scaled by `output_scale`."""

    def __init__(self, model: StyleGAN3Config, resolution: int, num_channels: int = 3,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.level_max = log2_int(resolution)
        first, specs = layout_of(model, resolution, num_channels)
        self.num_ws = len(specs) + 1
        self.output_scale = model.output_scale
        self.input = SynthesisInput(model.dlatent_size, first)
        self.layers = [SynthesisLayer(model.dlatent_size, spec, model.conv_clamp) for spec in specs]

    @tf.autograph.experimental.do_not_convert
    def __call__(self, dlatents: tf.Tensor, level: int | None = None, fade: tf.Tensor | float = 0.0,
                 randomize_noise: bool = True, ema_beta: tf.Tensor | None = None) -> tf.Tensor:
        """`level`/`fade` exist for the shared G interface (StyleGAN3 synthesizes its full resolution only);
        StyleGAN3 has no noise inputs. `ema_beta`: update the layers' magnitude EMAs (training)."""
        if level not in (None, self.level_max):
            raise ValueError(f"StyleGAN3 synthesizes {2**self.level_max}² only, not level {level}")
        ws = tf.unstack(dlatents, axis=1)
        x = self.input(ws[0])
        for layer, w in zip(self.layers, ws[1:], strict=True):
            x = layer(x, w, ema_beta)
        return x * self.output_scale if self.output_scale != 1 else x


class StyleGAN3Generator(Generator):
    """StyleGAN3's mapping and synthesis with our w_avg tracking and truncation; its w has num_layers + 2
    style inputs at every resolution."""

    MAPPING = StyleGAN3Mapping
    SYNTHESIS = StyleGAN3Synthesis

    def __init__(self, model: StyleGAN3Config, resolution: int, num_channels: int = 3,
                 name: str | None = None) -> None:
        super().__init__(model, resolution, num_channels, name)
        self.num_layers = self.synthesis.num_ws

    def set_transform(self, translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> None:
        """Translate and rotate what the generator draws, as gen_images.py's --translate/--rotate: the
        Fourier input's `transform` becomes the inverse of `make_transform` (identity: as trained)."""
        inverse = np.linalg.inv(make_transform(translate, angle))
        self.synthesis.input.transform.assign(inverse.astype(np.float32))
