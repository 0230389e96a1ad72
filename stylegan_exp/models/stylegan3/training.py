"""StyleGAN3's training steps as its training/loss.py and training_loop.py (stylegan2-ada-pytorch's loop):
non-saturating logistic loss, R1 only (lazy, every `d_reg_interval` minibatches, its Adam rescaled by
interval / (interval + 1)), no path length and no style mixing by default, the images D sees blurred early in
training (config R), and the layers' input magnitude EMAs and w_avg updated by the D step's fakes only, as the
original's `update_emas`. G has no regularization step, so its Adam is the schedule's.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import tensorflow as tf

from stylegan_exp.augment import Draws
from stylegan_exp.config import ConfigError, ScheduleConfig
from stylegan_exp.models.stylegan3.generator import magnitude_ema_beta
from stylegan_exp.nets.compiled import graph_function
from stylegan_exp.nets.layers import noise_from
from stylegan_exp.schedule import ScheduleState, gs_beta
from stylegan_exp.steps.base import GradSums, add_gradients
from stylegan_exp.steps.lazy_r1 import LazyR1Steps
from stylegan_exp.steps.losses import d_logistic, d_statistics

log = logging.getLogger(__name__)


def lazy_ratio(interval: int) -> float:
    """The share of D's optimizer steps that are main steps, interval / (interval + 1)."""
    if interval < 1:
        raise ConfigError(f"model.d_reg_interval must be >= 1, got {interval}")
    return interval / (interval + 1)


def blur_sigma_at(kimg: float, sigma: float, fade_kimg: float) -> float:
    """σ of the blur D's images get at `kimg`: `sigma` fading linearly to 0 over `fade_kimg` (loss.py)."""
    return max(1.0 - kimg / fade_kimg, 0.0) * sigma if fade_kimg > 0 else 0.0


@tf.autograph.experimental.do_not_convert
def blur_images(images: tf.Tensor, sigma: tf.Tensor, max_size: int) -> tf.Tensor:
    """Images [N, H, W, C] filtered by the normalized taps 2^-(k/σ)² for |k| ≤ ⌊3σ⌋ along each axis, zero
    padded (loss.py's run_D blur); `max_size` ≥ ⌊3σ⌋ fixes the traced filter length."""
    k = tf.range(-max_size, max_size + 1, dtype=tf.float32)
    taps = tf.where(tf.abs(k) <= tf.floor(sigma * 3), tf.pow(2.0, -tf.square(k / sigma)), 0.0)
    taps = taps / tf.reduce_sum(taps)
    c = images.shape[3]
    x = tf.pad(images, [[0, 0], [max_size, max_size], [max_size, max_size], [0, 0]])
    x = tf.nn.depthwise_conv2d(x, tf.tile(taps[:, None, None, None], [1, 1, c, 1]), [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, tf.tile(taps[None, :, None, None], [1, 1, c, 1]), [1, 1, 1, 1], "VALID")


class StyleGAN3Steps(LazyR1Steps):
    """G step, D step (+ Gs update), lazy R1 step at full resolution; `minibatches` is checkpointed so a
    resumed run regularizes on the minibatches the uninterrupted one would."""

    def setup(self) -> None:
        if self.dtype is not None:
            raise ConfigError(f"model.precision={self.model.precision}: StyleGAN3 trains in float32 only")
        m = self.model
        self.d_lr_factor = lazy_ratio(m.d_reg_interval)
        opt = self.D_opt
        opt.beta1, opt.beta2 = opt.beta1**self.d_lr_factor, opt.beta2**self.d_lr_factor
        self.blur_size = math.floor(3 * m.blur_sigma) if m.blur_fade_kimg > 0 else 0
        with self.strategy.scope():
            self.minibatches = tf.Variable(0, dtype=tf.int64, trainable=False, name="minibatches")
            self.blur_sigma = tf.Variable(0.0, trainable=False, name="blur_sigma")
            self.ema_beta = tf.Variable(1.0, trainable=False, name="magnitude_ema_beta")
        xla = m.jit_compile
        self._r1_grads = graph_function(self.r1_replica, jit_compile=True) if xla else self.r1_replica
        self.d_reg_step = graph_function(self._d_reg_step)
        self.r1_stats: dict[str, tf.Tensor] = {}
        self._told = False

    def fakes(self, z: tf.Tensor, level: int, fade: tf.Tensor | float,
              update_emas: bool = False) -> tf.Tensor:
        """G(z) in training; `update_emas` (the D step's fakes) moves w_avg and the magnitude EMAs."""
        m = self.model
        beta = m.dlatent_avg_beta if update_emas else 1.0
        w = self.G.train_dlatents(z, level, self.rng, m.style_mixing_prob, beta)
        with noise_from(self.rng):
            return self.G.synthesis(w, level, randomize_noise=True,
                                    ema_beta=self.ema_beta if update_emas else None)

    def scores(self, images: tf.Tensor, level: int, fade: tf.Tensor | float, draws: Draws) -> tf.Tensor:
        """D's scores of images blurred by the current σ (none once the blur has faded), then augmented."""
        if self.blur_size > 0:
            sigma, size = self.blur_sigma, self.blur_size
            images = tf.cond(sigma > 0, lambda: blur_images(images, sigma, size), lambda: tf.identity(images))
        return super().scores(images, level, fade, draws)

    def d_replica(self, micro: list[tuple[tf.Tensor, tf.Tensor, Draws, Draws]], total: tf.Tensor,
                  level: int, fade: tf.Tensor | float) -> GradSums:
        """The main D step: logistic loss only (R1 is the lazy `r1_replica` step)."""
        grads, sums = None, None
        for x, zk, real_draws, fake_draws in micro:
            fakes = self.fakes(zk, level, fade, update_emas=True)
            with tf.GradientTape() as tape:
                real_scores = self.scores(x, level, fade, real_draws)
                fake_scores = self.scores(fakes, level, fade, fake_draws)
                loss = tf.reduce_sum(d_logistic(real_scores, fake_scores))
            grads = add_gradients(grads, tape.gradient(loss / total, self.D_trainables))
            stats = d_statistics(loss, real_scores, fake_scores)
            sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        return grads, {k: v / total for k, v in sums.items()}

    def _d_reg_step(self, reals: tf.Tensor, level: int) -> dict[str, tf.Tensor]:
        total = tf.shape(reals)[0] * self.workers
        return self.apply_gradients(self._r1_grads, (reals, self.draw(total)), total, level, 0.0, self.D_opt,
                                    self.D_scale, self.D_trainables, combine=self.r1_combine)

    def iteration(self, data: Iterator[tf.Tensor], sched: ScheduleState,
                  schedule: ScheduleConfig) -> tuple[list[dict[str, tf.Tensor]], int]:
        """`minibatch_repeats` × (G step, D step and Gs update, R1 step every d_reg_interval minibatches)."""
        if not self._told:
            self._told = True
            log.info("StyleGAN3 trains at full resolution from the first step: schedule.lod_* keys, "
                     "reset_opt_for_new_lod and D_repeats do not apply")
        m, level = self.model, sched.level
        start = round(sched.kimg * 1000)
        self.ema_beta.assign(magnitude_ema_beta(sched.minibatch, m.magnitude_ema_kimg))
        stats, shown = [], 0
        for _ in range(schedule.minibatch_repeats):
            self.blur_sigma.assign(blur_sigma_at(sched.kimg + shown / 1000, m.blur_sigma, m.blur_fade_kimg))
            count = int(self.minibatches.numpy())
            self.minibatches.assign_add(1)
            out = dict(self.g_step(tf.constant(sched.minibatch), level, 0.0))
            reals = next(data)
            out.update(self.d_step(reals, level, 0.0))
            beta = gs_beta(sched.minibatch, schedule.G_smoothing_kimg, schedule.G_smoothing_rampup,
                           start + shown)
            self.update_gs(tf.constant(beta, tf.float32))
            if count % m.d_reg_interval == 0:
                self.r1_stats = self.d_reg_step(reals, level)
            out.update(self.r1_stats)
            stats.append(out)
            shown += sched.minibatch
        return stats, shown

    def checkpoint_objects(self) -> dict[str, tf.Module | tf.Variable]:
        return {**super().checkpoint_objects(), "minibatches": self.minibatches}

    def set_learning_rates(self, G_lrate: float, D_lrate: float) -> None:
        """D's rate × interval / (interval + 1) for its lazy R1 (G has no regularization step)."""
        super().set_learning_rates(G_lrate, D_lrate * self.d_lr_factor)

    def reset_optimizers(self) -> None:
        """StyleGAN3 never adds layers, so its Adam state (checkpointed) is never reset."""
