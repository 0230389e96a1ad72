"""Label conditioning of a discriminator by projection, as stylegan2-ada's D: the label c is mapped to a
vector cmap (a dense embedding, normalized, through the mapping layers) and D's output layer gives as many
features; the score is their dot product / sqrt(cmap_dim)."""

from __future__ import annotations

import math

import tensorflow as tf

from stylegan_exp.config import ModelConfig
from stylegan_exp.nets.layers import Dense, lrelu, pixel_norm


class LabelMapping(tf.Module):
    """c [N, c_dim] → cmap [N, cmap_dim]: embedding, 2nd-moment normalization, `label_mapping_layers` dense
    layers at `label_mapping_lrmul` (G's mapping_layers / mapping_lrmul unless set; stylegan2-ada's
    MappingNetwork with z_dim 0)."""

    def __init__(self, model: ModelConfig, c_dim: int, cmap_dim: int, name: str | None = None) -> None:
        super().__init__(name=name)
        layers, lrmul = model.label_mapping_layers, model.label_mapping_lrmul
        self.embed = Dense(c_dim, cmap_dim, gain=1.0)
        self.dense = [Dense(cmap_dim, cmap_dim, lrmul=model.mapping_lrmul if lrmul is None else lrmul)
                      for _ in range(model.mapping_layers if layers is None else layers)]

    def __call__(self, c: tf.Tensor) -> tf.Tensor:
        x = pixel_norm(self.embed(c))
        for layer in self.dense:
            x = lrelu(layer(x))
        return x


def project(features: tf.Tensor, cmap: tf.Tensor) -> tf.Tensor:
    """One score per image: Σ features · cmap / sqrt(cmap_dim)."""
    dim = int(cmap.shape[-1])
    return tf.reduce_sum(features * tf.cast(cmap, features.dtype), axis=1) * (1.0 / math.sqrt(dim))
