"""StyleGAN building blocks (NHWC) with the original's equalized learning rate and weight layouts.

Weights are stored as the original stores them ([k, k, in, out] for convolutions, [in, out] for
dense layers) so original `.pkl` snapshots map onto these variables; only the NCHW const/noise maps
and D's 4×4 Dense0 rows are re-laid out (see legacy.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

SQRT2 = math.sqrt(2.0)
_INFERENCE = contextvars.ContextVar("inference_graph", default=False)


def runtime_scale(fan_in: int, gain: float = SQRT2, lrmul: float = 1.0) -> float:
    """Equalized learning rate: the weight multiplier applied at run time (He constant times lrmul)."""
    return gain / math.sqrt(fan_in) * lrmul


def _weight(shape: tuple[int, ...], lrmul: float, name: str) -> tf.Variable:
    """Weights start at N(0, 1/lrmul) so that, after the runtime scale, every layer learns at one speed."""
    init = tf.random.normal(shape, stddev=1.0 / lrmul)
    return tf.Variable(init, name=name)


@contextlib.contextmanager
def inference_graph() -> Iterator[None]:
    """Layers traced meanwhile carry no custom gradients (lrelu's plain op, the same forward values): for
    graphs saved to run elsewhere (export), since a SavedModel cannot save the gradient of lrelu's custom
    gradient, and loading one without it warns once per function that uses it."""
    token = _INFERENCE.set(True)
    try:
        yield
    finally:
        _INFERENCE.reset(token)


def lrelu(x: tf.Tensor, alpha: float = 0.2) -> tf.Tensor:
    """Leaky ReLU whose gradients (first and second order, for R1) read its output, as the original's do,
    never its input: the convolution + bias + activation before it then fuse into one op (grappler's
    remapper refuses, and fails on R1's double backward, when the gradient also reads the bias add)."""
    if _INFERENCE.get():
        return tf.nn.leaky_relu(x, alpha)

    @tf.custom_gradient
    def forward(x: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
        y = tf.nn.leaky_relu(x, alpha)

        @tf.custom_gradient
        def backward(dy: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
            # y > 0 exactly where x > 0: the slope is x's
            return (tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=alpha),
                    lambda ddx: tf.raw_ops.LeakyReluGrad(gradients=ddx, features=y, alpha=alpha))

        return y, backward

    return forward(x)


class Dense(tf.Module):
    """Fully connected layer with equalized learning rate; bias (if any) also scaled by lrmul."""

    def __init__(self, fan_in: int, fmaps: int, *, gain: float = SQRT2, lrmul: float = 1.0,
                 use_bias: bool = True, name: str | None = None) -> None:
        super().__init__(name=name)
        self.scale = runtime_scale(fan_in, gain, lrmul)
        self.lrmul = lrmul
        self.weight = _weight((fan_in, fmaps), lrmul, "weight")
        self.bias = tf.Variable(tf.zeros([fmaps]), name="bias") if use_bias else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.reshape(x, [tf.shape(x)[0], -1])
        y = tf.matmul(x, self.weight * self.scale)
        if self.bias is not None:
            y = y + self.bias * self.lrmul
        return y


class Conv2D(tf.Module):
    """k×k convolution with equalized learning rate, optionally with 2× up- or downscaling.

    Scaling runs as one transposed/strided convolution whose kernel folds in the 2×2 nearest/box filter:
    4/9 of the FLOPs of resampling and convolving at the higher resolution. For "down" that is the same
    function as convolving, then box-downscaling. For "up" the original's fused kernel (from 128² up) is not
    the mirror image of nearest-upscaling followed by the convolution, so `upscale_first` (the original below
    128²) flips the kernel to compute exactly the latter.
    """

    def __init__(self, fan_in_fmaps: int, fmaps: int, kernel: int, *, gain: float = SQRT2,
                 use_bias: bool = False, scaling: str | None = None, upscale_first: bool = False,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        if scaling not in (None, "up", "down"):
            raise ValueError(f"Conv2D scaling must be None, 'up' or 'down', got {scaling!r}")
        self.kernel = kernel
        self.scaling = scaling
        self.upscale_first = upscale_first
        self.fmaps = fmaps
        self.scale = runtime_scale(kernel * kernel * fan_in_fmaps, gain)
        self.weight = _weight((kernel, kernel, fan_in_fmaps, fmaps), 1.0, "weight")
        self.bias = tf.Variable(tf.zeros([fmaps]), name="bias") if use_bias else None

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        w = self.weight * self.scale
        if self.scaling == "up":
            w = tf.transpose(resampling_kernel(w, flip=self.upscale_first), [0, 1, 3, 2])
            shape = tf.shape(x)
            out_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, self.fmaps])
            y = tf.nn.conv2d_transpose(x, w, out_shape, strides=2, padding="SAME")
        elif self.scaling == "down":
            y = tf.nn.conv2d(x, resampling_kernel(w, scale=0.25), strides=2, padding="SAME")
        else:
            y = tf.nn.conv2d(x, w, strides=1, padding="SAME")
        if self.bias is not None:
            y = tf.nn.bias_add(y, self.bias)
        return y


def _resampling_map(kernel: int, flip: bool, scale: float) -> np.ndarray:
    """[(k+1)², k²]: tap (a, b) of the (k+1)×(k+1) kernel sums taps (a, b), (a-1, b), (a, b-1), (a-1, b-1) of
    the k×k one (zero-padded), i.e. the k×k kernel convolved with a 2×2 box."""
    m = np.zeros((kernel + 1, kernel + 1, kernel, kernel), np.float32)
    for a in range(kernel + 1):
        for b in range(kernel + 1):
            for i in (a - 1, a):
                for j in (b - 1, b):
                    if 0 <= i < kernel and 0 <= j < kernel:
                        src = (kernel - 1 - i, kernel - 1 - j) if flip else (i, j)
                        m[a, b, src[0], src[1]] = scale
    return m.reshape((kernel + 1) ** 2, kernel * kernel)


def resampling_kernel(w: tf.Tensor, *, flip: bool = False, scale: float = 1.0) -> tf.Tensor:
    """The (k+1)×(k+1) kernel of a convolution fused with 2× resampling, from its k×k kernel [k, k, in, out]
    (`flip`: mirrored first). One small matmul: its gradient is a matmul too, where the slices of the
    original's `pad` + `add_n` would backpropagate through slow StridedSliceGrad ops (twice under R1)."""
    k, _, fan_in, fmaps = w.shape
    m = tf.constant(_resampling_map(k, flip, scale), dtype=w.dtype)
    return tf.reshape(tf.matmul(m, tf.reshape(w, [k * k, fan_in * fmaps])), [k + 1, k + 1, fan_in, fmaps])


def upscale2d(x: tf.Tensor, factor: int = 2) -> tf.Tensor:
    """Nearest-neighbour upscaling, as the original's `upscale2d`."""
    if factor == 1:
        return x
    x = tf.repeat(x, factor, axis=1)
    return tf.repeat(x, factor, axis=2)


def downscale2d(x: tf.Tensor, factor: int = 2) -> tf.Tensor:
    """Box-filter downscaling (average of factor×factor blocks), as the original's `downscale2d`.

    Integer images (the dataset reader's uint8) are averaged in float32; a power-of-two factor equals
    the 2×2 box filter repeated."""
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    if factor == 1:
        return x
    return tf.nn.avg_pool2d(x, factor, factor, "VALID")


def no_fade(t: tf.Tensor | float) -> bool:
    """A fade that is the Python number 0 (a stable lod): the lower level's path is left out of the graph
    instead of being computed and multiplied by zero, as the original's recursive structure skips it."""
    return isinstance(t, int | float) and t == 0


def fade_lod(images: tf.Tensor, t: tf.Tensor | float) -> tf.Tensor:
    """Blend reals toward their half-resolution version by t = lod - floor(lod), as the original
    process_reals does, so reals match what the fading-in generator can produce."""
    x = tf.convert_to_tensor(images)
    if no_fade(t):
        return x
    y = upscale2d(downscale2d(x, 2), 2)
    return x + (y - x) * tf.cast(t, x.dtype)


_BLUR_1D = np.array([1.0, 2.0, 1.0], dtype=np.float32)


def blur2d(x: tf.Tensor) -> tf.Tensor:
    """Separable [1, 2, 1] low-pass filter, normalized, applied per channel after upsampling."""
    k = np.outer(_BLUR_1D, _BLUR_1D)
    k = (k / k.sum())[:, :, None, None]
    channels = x.shape[-1]
    kernel = tf.constant(np.tile(k, [1, 1, channels, 1]), dtype=x.dtype)
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")


def pixel_norm(x: tf.Tensor, epsilon: float = 1e-8) -> tf.Tensor:
    """Normalize each feature vector to unit average square (latents and ProGAN features).

    Statistics are taken in float32: epsilon 1e-8 underflows to 0 in float16."""
    x32 = tf.cast(x, tf.float32)
    y = x32 * tf.math.rsqrt(tf.reduce_mean(tf.square(x32), axis=-1, keepdims=True) + epsilon)
    return tf.cast(y, x.dtype)


def instance_norm(x: tf.Tensor, epsilon: float = 1e-8, *, scale: tf.Tensor | None = None,
                  bias: tf.Tensor | None = None) -> tf.Tensor:
    """Zero mean, unit variance per sample and channel over the spatial axes (the 'IN' of AdaIN), in float32
    for the same reason as pixel_norm (the constant 4×4 input has zero variance).

    With AdaIN's style (`scale`, `bias`: [N, C]) it returns norm(x) · scale + bias, the scale folded into the
    per-channel normalizer: one full-size multiply fewer, forward and backward."""
    x32 = tf.cast(x, tf.float32)
    x32 = x32 - tf.reduce_mean(x32, axis=[1, 2], keepdims=True)
    normalizer = tf.math.rsqrt(tf.reduce_mean(tf.square(x32), axis=[1, 2], keepdims=True) + epsilon)
    if scale is not None:
        normalizer = normalizer * tf.cast(scale, tf.float32)[:, None, None, :]
    y = x32 * normalizer
    if bias is not None:
        y = y + tf.cast(bias, tf.float32)[:, None, None, :]
    return tf.cast(y, x.dtype)


def minibatch_stddev(x: tf.Tensor, group_size: int = 4, num_new_features: int = 1) -> tf.Tensor:
    """Append the per-group standard deviation of features as extra channels (ProGAN's diversity cue).

    Sample i belongs to group column i mod (N / group_size), exactly as the original's reshape.
    """
    n, h, w, c = x.shape
    batch = tf.shape(x)[0]
    group = tf.minimum(group_size, batch)
    y = tf.reshape(tf.cast(x, tf.float32), [group, -1, h, w, num_new_features, c // num_new_features])
    y = y - tf.reduce_mean(y, axis=0, keepdims=True)
    y = tf.sqrt(tf.reduce_mean(tf.square(y), axis=0) + 1e-8)
    y = tf.reduce_mean(y, axis=[1, 2, 4])
    y = tf.reshape(y, [-1, 1, 1, num_new_features])
    y = tf.tile(y, [group, h, w, 1])
    return tf.concat([x, tf.cast(y, x.dtype)], axis=-1)


class _NoiseSource:
    """The generator randomized noise is drawn from while a training step is traced (None: TensorFlow's
    global random ops). A plain attribute, not a context variable: replicas are traced in other threads."""

    generator: tf.random.Generator | None = None


_NOISE = _NoiseSource()


@contextlib.contextmanager
def noise_from(generator: tf.random.Generator) -> Iterator[None]:
    """Randomized noise in the graphs traced meanwhile is drawn from `generator`: a training step's noise is
    then part of its checkpointed random stream, so a resumed run draws what the uninterrupted one would."""
    previous, _NOISE.generator = _NOISE.generator, generator
    try:
        yield
    finally:
        _NOISE.generator = previous


class NoiseInput(tf.Module):
    """Per-pixel Gaussian noise scaled by a learned per-channel weight (zero at init).

    The fixed noise map is a non-trainable variable, used when noise is not randomized so that
    fakes grids and transfer checks are reproducible.
    """

    def __init__(self, channels: int, size: int | tuple[int, int], per_channel: bool = True,
                 name: str | None = None) -> None:
        """`size`: a square's side or (height, width); `per_channel=False`: one strength for all channels
        (StyleGAN2's noise_strength)."""
        super().__init__(name=name)
        height, width = (size, size) if isinstance(size, int) else size
        self.weight = tf.Variable(tf.zeros([channels] if per_channel else []), name="weight")
        self.noise = tf.Variable(tf.random.normal([1, height, width, 1]), trainable=False, name="noise")

    def __call__(self, x: tf.Tensor, randomize: bool) -> tf.Tensor:
        if randomize:
            shape = tf.shape(x)
            draw = tf.random.normal if _NOISE.generator is None else _NOISE.generator.normal
            noise = tf.cast(draw([shape[0], shape[1], shape[2], 1]), x.dtype)
        else:
            noise = tf.cast(self.noise, x.dtype)
        return x + noise * tf.cast(self.weight, x.dtype)


class StyleMod(tf.Module):
    """AdaIN's modulation x * (scale + 1) + bias: (scale + 1, bias) [N, C] each, predicted from w."""

    def __init__(self, dlatent_size: int, channels: int, name: str | None = None) -> None:
        super().__init__(name=name)
        self.dense = Dense(dlatent_size, channels * 2, gain=1.0)
        self.channels = channels

    def __call__(self, w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        scale, bias = tf.split(self.dense(w), 2, axis=-1)  # Split's gradient is a Concat
        return scale + 1.0, bias


class LayerEpilogue(tf.Module):
    """What follows every synthesis convolution: noise, bias, leaky ReLU, instance norm, style."""

    def __init__(self, channels: int, size: int | tuple[int, int], dlatent_size: int, use_noise: bool,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.noise = NoiseInput(channels, size) if use_noise else None
        self.bias = tf.Variable(tf.zeros([channels]), name="bias")
        self.style = StyleMod(dlatent_size, channels)

    def __call__(self, x: tf.Tensor, w: tf.Tensor, randomize_noise: bool) -> tf.Tensor:
        if self.noise is not None:
            x = self.noise(x, randomize_noise)
        x = lrelu(tf.nn.bias_add(x, self.bias))
        scale, bias = self.style(w)
        return instance_norm(x, scale=scale, bias=bias)


def lerp(a: tf.Tensor, b: tf.Tensor, t: tf.Tensor | float) -> tf.Tensor:
    return a + (b - a) * t
