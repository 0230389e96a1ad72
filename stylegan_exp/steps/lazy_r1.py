"""Lazy R1, shared by the architectures after StyleGAN (stylegan2 loss.py, stylegan3 loss.py): R1 as a D step
of its own every `d_reg_interval` minibatches on the D step's reals, its loss multiplied by the interval."""

from __future__ import annotations

import tensorflow as tf

from stylegan_exp.augment import Draws
from stylegan_exp.steps.base import GradSums, TrainingSteps, add_gradients
from stylegan_exp.steps.losses import r1_penalty


def zero_filled(grads: dict[int, tf.Tensor], variables: list[tf.Variable]) -> dict[int, tf.Tensor]:
    """Variables a regularizer does not reach (e.g. the last toRGB bias, D's output bias) get a zero
    gradient, as the original's optimizer gives them: Adam still decays their second moment."""
    return {i: grads[i] if i in grads else tf.zeros_like(v) for i, v in enumerate(variables)}


class LazyR1Steps(TrainingSteps):
    """An architecture's R1 step applies `r1_replica` with `combine=r1_combine`."""

    def r1_replica(self, micro: list[tuple[tf.Tensor, Draws]], total: tf.Tensor, level: int,
                   fade: tf.Tensor | float) -> GradSums:
        """γ/2 · interval · ‖∇ₓD(x)‖² on the reals as D sees them (augmented, as stylegan2-ada; blurred too
        where the architecture's `scores` blurs)."""
        scale = self.D_scale.scale
        weight = self.model.r1_gamma * 0.5 * self.model.d_reg_interval
        grads, r1_sum = None, 0.0
        for x, draws in micro:
            with tf.GradientTape() as tape:
                with tf.GradientTape() as r1_tape:
                    r1_tape.watch(x)
                    real_sum = tf.reduce_sum(self.scores(x, level, fade, draws)) * scale
                r1 = r1_penalty(r1_tape.gradient(real_sum, x) / scale)
                scaled = tf.reduce_sum(r1) * weight / total * scale
            grads = add_gradients(grads, tape.gradient(scaled, self.D_trainables))
            r1_sum += tf.reduce_sum(r1)
        return grads, {"loss/R1": r1_sum / total}

    def r1_combine(self, grads: dict[int, tf.Tensor], stats: dict[str, tf.Tensor]) -> GradSums:
        return zero_filled(grads, self.D_trainables), stats
