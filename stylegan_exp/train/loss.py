"""The paper's losses: non-saturating logistic G loss; logistic D loss with the R1 penalty on reals."""

from __future__ import annotations

import tensorflow as tf


def g_logistic_ns(fake_scores: tf.Tensor) -> tf.Tensor:
    """Per-sample G loss softplus(-D(G(z)))."""
    return tf.nn.softplus(-fake_scores)


def d_logistic(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """Per-sample D loss softplus(D(G(z))) + softplus(-D(x))."""
    return tf.nn.softplus(fake_scores) + tf.nn.softplus(-real_scores)


def r1_penalty(real_grads: tf.Tensor, upscale: int = 1) -> tf.Tensor:
    """Per-sample ||∇ₓD(x)||² (multiply by γ/2 for the loss) as the original measures it while growing: on
    the reals upscaled (nearest) by `upscale` = 2**floor(lod) to the network's full resolution, where D
    box-filters them back down. Each pixel of the working resolution is upscale² pixels there, each with
    1/upscale² of its gradient, so the penalty is 1/upscale² of the one at the working resolution: R1 is 4×
    weaker per lod."""
    return tf.reduce_sum(tf.square(real_grads), axis=[1, 2, 3]) / float(upscale * upscale)
