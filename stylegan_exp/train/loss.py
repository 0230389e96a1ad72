"""The paper's losses: non-saturating logistic G loss; logistic D loss with the R1 penalty on reals."""

from __future__ import annotations

import tensorflow as tf


def g_logistic_ns(fake_scores: tf.Tensor) -> tf.Tensor:
    """Per-sample G loss softplus(-D(G(z)))."""
    return tf.nn.softplus(-fake_scores)


def d_logistic(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """Per-sample D loss softplus(D(G(z))) + softplus(-D(x))."""
    return tf.nn.softplus(fake_scores) + tf.nn.softplus(-real_scores)


def r1_penalty(real_grads: tf.Tensor) -> tf.Tensor:
    """Per-sample ||∇ₓD(x)||² (multiply by γ/2 for the loss)."""
    return tf.reduce_sum(tf.square(real_grads), axis=[1, 2, 3])
