"""What every style-based generator shares: the mapping network and the w handling around an architecture's
synthesis network (tracked w_avg, style mixing regularization, truncation, running at a level of detail)."""

from __future__ import annotations

from typing import ClassVar

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.config import ModelConfig
from stylegan_exp.nets.layers import Dense, lerp, lrelu, pixel_norm, upscale2d
from stylegan_exp.nets.network import Network


def num_style_layers(level: int) -> int:
    """Style inputs used by a synthesis network of 2**level pixels (two per resolution)."""
    return 2 * level - 2


class Mapping(tf.Module):
    """z → w: pixel-normalized latent through `mapping_layers` dense layers at `mapping_lrmul`.

    With `c_dim` labels (a conditional model, as stylegan2-ada's MappingNetwork) the label is embedded by a
    dense layer to `dlatent_size` features, normalized like z and concatenated after it: the first layer
    then takes latent + dlatent inputs. `c_dim` 0 makes no label weights at all."""

    def __init__(self, model: ModelConfig, name: str | None = None, c_dim: int = 0) -> None:
        super().__init__(name=name)
        self.c_dim = c_dim
        if c_dim:
            self.embed = Dense(c_dim, model.dlatent_size, gain=1.0)
        hidden = [model.mapping_fmaps] * (model.mapping_layers - 1)
        sizes = [model.latent_size + (model.dlatent_size if c_dim else 0), *hidden, model.dlatent_size]
        self.dense = [Dense(sizes[i], sizes[i + 1], lrmul=model.mapping_lrmul)
                      for i in range(model.mapping_layers)]

    def inputs(self, z: tf.Tensor, c: tf.Tensor | None) -> tf.Tensor:
        """The first layer's input: normalized z, and for a conditional mapping its normalized label
        embedding."""
        if not self.c_dim:
            return pixel_norm(z)
        if c is None:
            raise ValueError(f"this generator is conditional on {self.c_dim} labels: it needs a label "
                             "vector for every latent")
        return tf.concat([pixel_norm(z), pixel_norm(self.embed(c))], axis=1)

    def __call__(self, z: tf.Tensor, c: tf.Tensor | None = None) -> tf.Tensor:
        x = self.inputs(z, c)
        for layer in self.dense:
            x = lrelu(layer(x))
        return x


class Generator(Network):
    """G = mapping + synthesis + the tracked average w used by the truncation trick.

    Each architecture subclasses it in its package, naming its networks in MAPPING and SYNTHESIS: a synthesis
    network is called `(dlatents [N, num_layers, dlatent], level, fade, randomize_noise)` and returns images
    at 2**level (an architecture without progressive growing accepts only its full resolution)."""

    MAPPING: ClassVar[type[tf.Module]]
    SYNTHESIS: ClassVar[type[tf.Module]]
    # Inversion penalises autocorrelated optimised noise maps (the StyleGAN2 projector's regularizer).
    NOISE_REGULARIZED: ClassVar[bool] = False

    def __init__(self, model: ModelConfig, resolution: int, num_channels: int = 3,
                 name: str | None = None, *, aspect: Aspect = SQUARE, c_dim: int = 0) -> None:
        super().__init__(model, resolution, num_channels, name, aspect=aspect)
        self.latent_size = model.latent_size
        self.c_dim = c_dim  # label vector size of a conditional generator (0: unconditional)
        self.num_layers = num_style_layers(self.resolution_log2)
        self.mapping = self.MAPPING(model, c_dim=c_dim) if c_dim else self.MAPPING(model)
        # only synthesis networks that build rectangles take an aspect (config_checks refuses the others)
        shape = {} if aspect.square else {"aspect": aspect}
        self.synthesis = self.SYNTHESIS(model, resolution, num_channels, **shape)
        self.w_avg = tf.Variable(tf.zeros([model.dlatent_size]), trainable=False, name="dlatent_avg")

    def map(self, z: tf.Tensor, c: tf.Tensor | None = None) -> tf.Tensor:
        """z [N, latent] (and labels c [N, c_dim] of a conditional generator) → w broadcast to every style
        layer [N, num_layers, dlatent]."""
        w = self.mapping(z, c) if self.c_dim else self.mapping(z)
        return tf.tile(w[:, None, :], [1, self.num_layers, 1])

    def truncate(self, dlatents: tf.Tensor, psi: float, cutoff: int | None,
                 center: tf.Tensor | None = None) -> tf.Tensor:
        """w' = w_avg + psi (w - w_avg) on the layers below `cutoff`; None truncates every layer, as
        StyleGAN2's G_main (StyleGAN's G_style disables truncation for None; its importer records 0).
        `center` [N, dlatent] replaces w_avg per row (a conditional model's average w of each row's label)."""
        cutoff = self.num_layers if cutoff is None else cutoff
        mask = tf.reshape(tf.range(self.num_layers) < cutoff, [1, -1, 1])
        truncated = lerp(self.w_avg if center is None else tf.expand_dims(center, 1), dlatents, psi)
        return tf.where(mask, truncated, dlatents)

    def train_dlatents(self, z: tf.Tensor, level: int, rng: tf.random.Generator,
                       mixing_prob: float, w_avg_beta: float, c: tf.Tensor | None = None) -> tf.Tensor:
        """Training-time w: updates w_avg and applies style mixing regularization at this level (the mixed-in
        latents share the labels `c` of a conditional generator, as stylegan2-ada's)."""
        dlatents = self.map(z, c)
        batch_avg = tf.reduce_mean(dlatents[:, 0], axis=0)
        self.w_avg.assign(lerp(batch_avg, self.w_avg, w_avg_beta))
        if mixing_prob <= 0:
            return dlatents
        # a network at its full resolution has all its style layers (StyleGAN3's count is its own)
        cur_layers = self.num_layers if level == self.resolution_log2 else num_style_layers(level)
        z2 = rng.normal(tf.shape(z))
        dlatents2 = self.map(z2, c)
        if cur_layers > 1:
            mixed = rng.uniform([]) < mixing_prob
            random_cutoff = rng.uniform([], 1, cur_layers, dtype=tf.int32)
            cutoff = tf.where(mixed, random_cutoff, cur_layers)
        else:
            cutoff = tf.constant(cur_layers)
        mask = tf.reshape(tf.range(self.num_layers) < cutoff, [1, -1, 1])
        return tf.where(mask, dlatents, dlatents2)

    def synthesize(self, dlatents: tf.Tensor, randomize_noise: bool = False) -> tf.Tensor:
        """Full-size images from w, as the network was trained at `lod`: at its level and fade, then
        upscaled (nearest) to the full size, as the original's Gs does while growing."""
        level, fade = self.level_and_fade()
        images = self.synthesis(dlatents, level, fade, randomize_noise)
        return upscale2d(images, 2 ** (self.resolution_log2 - level))

    def __call__(self, z: tf.Tensor, level: int | None = None, fade: tf.Tensor | float = 0.0, *,
                 psi: float = 1.0, cutoff: int | None = None, randomize_noise: bool = True,
                 c: tf.Tensor | None = None) -> tf.Tensor:
        """Sampling path: z (and labels c) → (truncated) w → images at 2**level, or at `lod` and full size
        when None. Untruncated by default; sampling passes the snapshot's (or the user's) ψ and cutoff."""
        dlatents = self.map(z, c)
        if psi != 1.0:
            dlatents = self.truncate(dlatents, psi, cutoff)
        if level is None:
            return self.synthesize(dlatents, randomize_noise)
        return self.synthesis(dlatents, level, fade, randomize_noise)
