"""What the training steps ask of a discriminator augmentation; this base class is `augment=none`."""

from __future__ import annotations

import tensorflow as tf

# Per-image random numbers, batch-major: drawn for the global batch before it is split over replicas and
# micro-batches (like the latents), so every part augments its images exactly as the whole batch would.
Draws = dict[str, tf.Tensor]


class Augmentation(tf.Module):
    """No augmentation. Subclasses transform every image D sees (reals and fakes, in D's and G's steps) and
    keep their state (ADA's p) in variables, which the checkpoint saves."""

    enabled = False

    def draw(self, rng: tf.random.Generator, n: tf.Tensor | int) -> Draws:
        """The random numbers that augment `n` images."""
        return {}

    def __call__(self, images: tf.Tensor, draws: Draws) -> tf.Tensor:
        """`images` [N, H, W, C] as D sees them, transformed by their rows of `draws` (differentiably)."""
        return images

    @tf.autograph.experimental.do_not_convert  # nothing to convert (AutoGraph warns about empty bodies)
    def observe(self, rt: tf.Tensor, n: tf.Tensor) -> None:
        """Called after every D step of an enabled augmentation with r_t = E[sign(D(real))] over its `n`
        (global) reals."""

    def log_state(self) -> dict[str, float]:
        """What the tick log reports besides the steps' statistics."""
        return {}
