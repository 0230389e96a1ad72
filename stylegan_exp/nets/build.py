"""Networks from a model config: the one place that turns an architecture's config into G and D."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.config import ModelConfig, StyleGAN2Config, StyleGANConfig
from stylegan_exp.nets.discriminator import Discriminator
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.stylegan2_discriminator import StyleGAN2Discriminator
from stylegan_exp.nets.stylegan2_generator import StyleGAN2Generator

# Each architecture's (generator, discriminator) classes, keyed by its config class.
NETWORKS: dict[type[ModelConfig], tuple[type[tf.Module], type[tf.Module]]] = {
    StyleGANConfig: (Generator, Discriminator),
    StyleGAN2Config: (StyleGAN2Generator, StyleGAN2Discriminator),
}


def _classes(model: ModelConfig) -> tuple[type[tf.Module], type[tf.Module]]:
    if type(model) not in NETWORKS:
        raise TypeError(f"no networks for model config {type(model).__name__}")
    return NETWORKS[type(model)]


def build_generator(model: ModelConfig, resolution: int, num_channels: int = 3) -> tf.Module:
    return _classes(model)[0](model, resolution, num_channels)


def build_discriminator(model: ModelConfig, resolution: int, num_channels: int = 3) -> tf.Module:
    return _classes(model)[1](model, resolution, num_channels)
