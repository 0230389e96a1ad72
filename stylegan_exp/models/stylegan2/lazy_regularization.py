"""StyleGAN2's lazy regularization as pure formulas (NVlabs/stylegan2 training_loop.py and loss.py).

R1 and path-length regularization run as separate optimizer steps every `interval` minibatches, with their
loss multiplied by the interval; the main optimizer's Adam hyper-parameters are rescaled so that the main
and regularization steps together behave like one step per minibatch.

Path-length regularization: lengths l_j = √(mean over style layers of Σ_dlatent g²) with g = ∂(G(w)·y)/∂w for
y ~ N(0, 1/(H·W)) per pixel; the tracked mean a = m + decay·(mean_j l_j − m) (m: the mean before this step);
loss = weight · interval · mean_j (l_j − a)². Because a depends on every sample of the batch, its gradient is
(2·weight·interval/N)·[Σ_j (l_j − m)∇l_j − decay·(2 − decay)·(μ − m)·Σ_j ∇l_j] with μ = mean_j l_j: two sums
over samples that a split batch (replicas, accumulated micro-batches) adds up exactly, combined once the
global μ is known (`pl_correction`).
"""

from __future__ import annotations

import tensorflow as tf


def lazy_ratio(interval: int) -> float:
    """mb_ratio = interval / (interval + 1): the share of optimizer steps that are main steps."""
    if interval < 1:
        raise ValueError(f"a lazy regularization interval must be >= 1, got {interval}")
    return interval / (interval + 1)


def lazy_adam(lr: float, beta1: float, beta2: float, interval: int) -> tuple[float, float, float]:
    """The original's Adam rescaling for a regularization step every `interval` minibatches:
    (lr·r, β1^r, β2^r) with r = lazy_ratio(interval)."""
    r = lazy_ratio(interval)
    return lr * r, beta1**r, beta2**r


def pl_batch_size(minibatch: int, shrink: int, parts: int) -> int:
    """The path-length batch (minibatch // shrink), rounded down to whole micro-batches of the `parts`
    replicas × accumulation steps (at least one sample each)."""
    if shrink < 1:
        raise ValueError(f"model.pl_batch_shrink must be >= 1, got {shrink}")
    return max(parts, (minibatch // shrink) // parts * parts)


def path_lengths(pl_grads: tf.Tensor) -> tf.Tensor:
    """|J_w^T y| per sample from the gradient [N, layers, dlatent]: √(mean_layers Σ_dlatent g²)."""
    return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(pl_grads), axis=2), axis=1))


def pl_mean_update(pl_mean: tf.Tensor | float, mean_length: tf.Tensor | float, decay: float) -> tf.Tensor:
    """a = m + decay·(μ − m): the moving average the penalty is measured against."""
    return pl_mean + decay * (mean_length - pl_mean)


def pl_correction(pl_mean: tf.Tensor | float, mean_length: tf.Tensor | float, decay: float) -> tf.Tensor:
    """decay·(2 − decay)·(μ − m): the weight of Σ∇l_j in the penalty's gradient (see the module docstring)."""
    return decay * (2.0 - decay) * (mean_length - pl_mean)


def pl_penalty(mean_length: tf.Tensor, mean_square: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """mean_j (l_j − a)² from the batch moments mean_j l_j and mean_j l_j²."""
    return mean_square - 2.0 * target * mean_length + tf.square(target)
