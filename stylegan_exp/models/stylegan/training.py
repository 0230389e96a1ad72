"""StyleGAN's training steps (training_loop.py, loss.py of NVlabs/stylegan): the D step's logistic loss
with R1 on the reals every step, at the level of detail the schedule gives, and the original's iteration."""

from __future__ import annotations

from collections.abc import Iterator

import tensorflow as tf

from stylegan_exp.augment import Draws
from stylegan_exp.config import ScheduleConfig
from stylegan_exp.nets.layers import fade_lod
from stylegan_exp.schedule import ScheduleState, gs_beta
from stylegan_exp.steps.base import GradSums, TrainingSteps, add_gradients
from stylegan_exp.steps.losses import d_logistic, d_statistics, r1_penalty


class StyleGANSteps(TrainingSteps):
    """D step with R1 (γ/2 · ‖∇D(x)‖², on the reals as the full-resolution D sees them), G step, Gs update."""

    def d_replica(self, micro: list[tuple[tf.Tensor, tf.Tensor, Draws, Draws]], total: tf.Tensor, level: int,
                  fade: tf.Tensor | float) -> GradSums:
        variables = self.D_trainables
        grads, sums = None, None
        for x, zk, real_draws, fake_draws in micro:
            x = fade_lod(x, fade)
            fakes = self.fakes(zk, level, fade)
            with tf.GradientTape() as tape:
                with tf.GradientTape() as r1_tape:  # R1 on the reals themselves, through the augmentation
                    r1_tape.watch(x)
                    real_scores = self.scores(x, level, fade, real_draws)
                    real_sum = tf.reduce_sum(real_scores) * self.D_scale.scale
                r1 = r1_penalty(r1_tape.gradient(real_sum, x) / self.D_scale.scale,
                                upscale=2 ** (self.D.resolution_log2 - level))
                fake_scores = self.scores(fakes, level, fade, fake_draws)
                loss = tf.reduce_sum(d_logistic(real_scores, fake_scores) + r1 * (self.model.r1_gamma * 0.5))
                scaled = loss / total * self.D_scale.scale
            grads = add_gradients(grads, tape.gradient(scaled, variables))
            stats = {**d_statistics(loss, real_scores, fake_scores), "loss/R1": tf.reduce_sum(r1)}
            sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        return grads, {k: v / total for k, v in sums.items()}

    def iteration(self, data: Iterator[tf.Tensor], sched: ScheduleState,
                  schedule: ScheduleConfig) -> tuple[list[dict[str, tf.Tensor]], int]:
        """One evaluation of the schedule, as the original: `minibatch_repeats` × (`D_repeats` × (D step on
        a fresh minibatch, Gs update), then one G step). Returns each repeat's statistics and images shown.

        At a stable lod the fade is passed as the Python 0, which traces the steps without the lower
        level's path (a second trace per level, beside the fading one)."""
        fade = tf.constant(sched.fade, tf.float32) if sched.fade else 0.0
        start, stats, shown = round(sched.kimg * 1000), [], 0
        for _ in range(schedule.minibatch_repeats):
            for _ in range(schedule.D_repeats):
                out = self.d_step(next(data), sched.level, fade)
                beta = gs_beta(sched.minibatch, schedule.G_smoothing_kimg, schedule.G_smoothing_rampup,
                               start + shown)
                self.update_gs(tf.constant(beta, tf.float32))
                shown += sched.minibatch
            out.update(self.g_step(tf.constant(sched.minibatch), sched.level, fade))
            stats.append(out)
        return stats, shown
