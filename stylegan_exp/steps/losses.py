"""The papers' losses: non-saturating logistic G loss; logistic D loss; the R1 penalty on reals; what a D step
reports."""

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


def d_statistics(loss: tf.Tensor, real_scores: tf.Tensor, fake_scores: tf.Tensor) -> dict[str, tf.Tensor]:
    """What a D step reports, summed over its samples. augment/rt: r_t = E[sign(D(real))], the overfitting
    heuristic ADA tunes p by (worth a look with any augmentation: 0 = D cannot tell the reals, 1 = D is sure
    of every one)."""
    return {"loss/D": loss, "score/real": tf.reduce_sum(real_scores),
            "score/fake": tf.reduce_sum(fake_scores), "augment/rt": tf.reduce_sum(tf.sign(real_scores))}
