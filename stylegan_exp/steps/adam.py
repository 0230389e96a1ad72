"""Adam as the original uses it (TF1 `AdamOptimizer` semantics), with a state reset for new lods."""

from __future__ import annotations

import tensorflow as tf


class Adam(tf.Module):
    """lr_t = lr·√(1-β2ᵗ)/(1-β1ᵗ); var -= lr_t·m/(√v+ε). The learning rate is a variable set per tick."""

    def __init__(self, variables: list[tf.Variable], *, lr: float = 0.001, beta1: float = 0.0,
                 beta2: float = 0.99, epsilon: float = 1e-8, name: str | None = None) -> None:
        """The original's betas by default; inversion uses the usual (0.9, 0.999)."""
        super().__init__(name=name)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.lr = tf.Variable(lr, trainable=False, name="lr")
        self.step = tf.Variable(0.0, trainable=False, name="step")
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]

    def apply(self, grads: list[tf.Tensor | None], variables: list[tf.Variable]) -> None:
        """A None gradient (a layer of a level not yet grown) leaves its variable and moments untouched,
        which equals the original's zero gradient because moments are reset when the layer appears."""
        t = self.step.assign_add(1.0)
        lr_t = self.lr * tf.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        for g, var, m, v in zip(grads, variables, self.m, self.v, strict=True):
            if g is None:
                continue
            m_new = m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
            v_new = v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(g))
            var.assign_sub(lr_t * m_new / (tf.sqrt(v_new) + self.epsilon))

    def reset(self) -> None:
        """Forget moments and step count, as `reset_optimizer_state` does when new layers fade in."""
        self.step.assign(0.0)
        for slot in self.m + self.v:
            slot.assign(tf.zeros_like(slot))


class LossScale(tf.Module):
    """Dynamic loss scaling for float16 (Keras' schedule): a step whose gradients overflow is skipped
    and halves the scale; `growth_interval` finite steps in a row double it. Fixed at 1 when disabled."""

    def __init__(self, dynamic: bool, *, initial: float = 2.0**15, growth_interval: int = 2000,
                 name: str | None = None) -> None:
        super().__init__(name=name)
        self.dynamic = dynamic
        self.growth_interval = growth_interval
        self.scale = tf.Variable(initial if dynamic else 1.0, trainable=False, name="scale")
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")

    def unscale(self, grads: list[tf.Tensor | None]) -> tuple[list[tf.Tensor | None], tf.Tensor]:
        """Gradients divided by the scale, and whether all of them are finite."""
        if not self.dynamic:
            return grads, tf.constant(True)
        grads = [None if g is None else g / self.scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
        return grads, finite

    def update(self, finite: tf.Tensor) -> None:
        if not self.dynamic:
            return
        good = tf.where(finite, self.good_steps + 1, 0)
        grow = good >= self.growth_interval
        self.scale.assign(tf.where(finite, tf.where(grow, self.scale * 2.0, self.scale), self.scale * 0.5))
        self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good))
