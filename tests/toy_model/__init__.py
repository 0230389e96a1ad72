"""A throwaway third architecture, to prove that a model lands by adding its package and one registry line
(`stylegan_exp.models.ARCHITECTURES`): a mapping network, a one-layer synthesis, a two-block D and a D step
without regularization. Nothing in the house knows it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import tensorflow as tf

from stylegan_exp.augment import Draws
from stylegan_exp.config import ModelConfig, ScheduleConfig
from stylegan_exp.models.architecture import Architecture
from stylegan_exp.nets.generator import Generator, Mapping
from stylegan_exp.nets.layers import Conv2D, Dense, downscale2d, lrelu
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.schedule import ScheduleState, gs_beta
from stylegan_exp.steps.base import GradSums, TrainingSteps, add_gradients
from stylegan_exp.steps.losses import d_logistic, d_statistics


@dataclass
class ToyConfig(ModelConfig):
    ARCH: ClassVar[str] = "toy"

    toy_channels: int = 8


class ToySynthesis(tf.Module):
    """w → a 4×4 feature map by a dense layer, nearest-upscaled to the resolution, then a 1×1 toRGB."""

    def __init__(self, model: ToyConfig, resolution: int, num_channels: int = 3) -> None:
        super().__init__()
        self.resolution, self.fmaps = resolution, model.toy_channels
        self.dense = Dense(model.dlatent_size, 16 * model.toy_channels)
        self.torgb = Conv2D(model.toy_channels, num_channels, 1, gain=1.0, use_bias=True)

    def __call__(self, dlatents: tf.Tensor, level: int, fade: tf.Tensor | float = 0.0,
                 randomize_noise: bool = True) -> tf.Tensor:
        x = tf.reshape(lrelu(self.dense(dlatents[:, 0])), [-1, 4, 4, self.fmaps])
        x = tf.repeat(tf.repeat(x, self.resolution // 4, axis=1), self.resolution // 4, axis=2)
        return self.torgb(x)


class ToyGenerator(Generator):
    MAPPING = Mapping
    SYNTHESIS = ToySynthesis


class ToyDiscriminator(Discriminator):
    def __init__(self, model: ToyConfig, resolution: int, num_channels: int = 3) -> None:
        super().__init__(model, resolution, num_channels)
        self.blocks = [Dense(16 * model.toy_channels, 1, gain=1.0),
                       Conv2D(num_channels, model.toy_channels, 3, use_bias=True)]

    def features(self, images: tf.Tensor) -> list[tf.Tensor]:
        return [lrelu(self.blocks[1](images))]

    def __call__(self, images: tf.Tensor, level: int | None = None,
                 fade: tf.Tensor | float = 0.0) -> tf.Tensor:
        x = downscale2d(self.features(images)[0], self.resolution // 4)
        return self.blocks[0](tf.reshape(x, [tf.shape(x)[0], -1]))[:, 0]


class ToySteps(TrainingSteps):
    def d_replica(self, micro: list[tuple[tf.Tensor, tf.Tensor, Draws, Draws]], total: tf.Tensor, level: int,
                  fade: tf.Tensor | float) -> GradSums:
        grads, sums = None, None
        for x, zk, real_draws, fake_draws in micro:
            fakes = self.fakes(zk, level, fade)
            with tf.GradientTape() as tape:
                real_scores = self.scores(x, level, fade, real_draws)
                fake_scores = self.scores(fakes, level, fade, fake_draws)
                loss = tf.reduce_sum(d_logistic(real_scores, fake_scores))
            grads = add_gradients(grads, tape.gradient(loss / total, self.D_trainables))
            stats = d_statistics(loss, real_scores, fake_scores)
            sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        return grads, {k: v / total for k, v in sums.items()}

    def iteration(self, data: Iterator[tf.Tensor], sched: ScheduleState,
                  schedule: ScheduleConfig) -> tuple[list[dict[str, tf.Tensor]], int]:
        start, stats = round(sched.kimg * 1000), []
        for repeat in range(schedule.minibatch_repeats):
            out = self.d_step(next(data), sched.level, 0.0)
            beta = gs_beta(sched.minibatch, schedule.G_smoothing_kimg, schedule.G_smoothing_rampup,
                           start + repeat * sched.minibatch)
            self.update_gs(tf.constant(beta, tf.float32))
            out.update(self.g_step(tf.constant(sched.minibatch), sched.level, 0.0))
            stats.append(out)
        return stats, schedule.minibatch_repeats * sched.minibatch


ARCHITECTURE = Architecture(ToyConfig, ToyGenerator, ToyDiscriminator, ToySteps)
