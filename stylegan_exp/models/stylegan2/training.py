"""StyleGAN2's training steps: the original's iteration (G step, maybe path-length step, D step + Gs update,
maybe R1 step) with lazy regularization, on the replica/accumulation/precision machinery of `TrainingSteps`.

Facts from NVlabs/stylegan2 (training_loop.py, loss.py): the main D loss has no R1; R1 (γ/2·‖∇D(x)‖²) runs on
the D step's reals every `d_reg_interval` minibatches and path-length regularization on a fresh batch of
minibatch // pl_batch_shrink latents every `g_reg_interval`, each as its own Adam step whose loss is
multiplied by the interval; both regularization optimizers share their network's Adam state, and the Adam
learning rate and betas are rescaled by interval / (interval + 1). Regularization runs when the count of
minibatches is a multiple of the interval; the original counts from the process start, we count from the
run's start (checkpointed), so that a resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import tensorflow as tf

from stylegan_exp.augment import Draws
from stylegan_exp.config import ScheduleConfig
from stylegan_exp.models.stylegan2.lazy_regularization import (
    lazy_adam,
    path_lengths,
    pl_batch_size,
    pl_correction,
    pl_mean_update,
    pl_penalty,
)
from stylegan_exp.nets.compiled import graph_function
from stylegan_exp.nets.layers import noise_from
from stylegan_exp.schedule import ScheduleState, gs_beta
from stylegan_exp.steps.base import GradSums, add_gradients
from stylegan_exp.steps.lazy_r1 import LazyR1Steps, zero_filled
from stylegan_exp.steps.losses import d_logistic, d_statistics
from stylegan_exp.steps.precision import computing_in

log = logging.getLogger(__name__)


def _mean_stats(sums: dict[str, tf.Tensor], total: tf.Tensor) -> dict[str, tf.Tensor]:
    return {k: v / total for k, v in sums.items()}


class StyleGAN2Steps(LazyR1Steps):
    """Steps at full resolution with lazy R1 and path-length regularization; `pl_mean` is checkpointed."""

    def setup(self) -> None:
        model = self.model
        self.lr_factors: dict[str, float] = {}
        for key, opt, interval in (("G", self.G_opt, model.g_reg_interval),
                                   ("D", self.D_opt, model.d_reg_interval)):
            self.lr_factors[key], opt.beta1, opt.beta2 = lazy_adam(1.0, opt.beta1, opt.beta2, interval)
        self.parts = self.strategy.num_replicas_in_sync * self.accumulate
        pl_batch_size(self.parts, model.pl_batch_shrink, self.parts)  # refuses a bad shrink at start-up
        with self.strategy.scope():
            self.pl_mean = tf.Variable(0.0, trainable=False, name="pl_mean")
        xla = model.jit_compile
        self._pl_grads = graph_function(self.pl_replica, jit_compile=True) if xla else self.pl_replica
        self._r1_grads = graph_function(self.r1_replica, jit_compile=True) if xla else self.r1_replica
        self.g_reg_step = graph_function(self._g_reg_step)
        self.d_reg_step = graph_function(self._d_reg_step)
        with self.strategy.scope():
            # The original's running_mb_counter (which restarts with the process): checkpointed here, so a
            # resumed run regularizes on the minibatches the uninterrupted one would.
            self.minibatches = tf.Variable(0, dtype=tf.int64, trainable=False, name="minibatches")
        self.reg_stats: dict[str, tf.Tensor] = {}
        self._told = False

    # ---- per-replica work (sums over this replica's micro-batches, divided by the global batch) ----

    def d_replica(self, micro: list[tuple[tf.Tensor, tf.Tensor, Draws, Draws]], total: tf.Tensor,
                  level: int, fade: tf.Tensor) -> GradSums:
        """The main D step: logistic loss only (R1 is the lazy `r1_replica` step)."""
        variables = self.D_trainables
        grads, sums = None, None
        for x, zk, real_draws, fake_draws in micro:
            fakes = self.fakes(zk, level, fade)
            with tf.GradientTape() as tape:
                real_scores = self.scores(x, level, fade, real_draws)
                fake_scores = self.scores(fakes, level, fade, fake_draws)
                loss = tf.reduce_sum(d_logistic(real_scores, fake_scores))
                scaled = loss / total * self.D_scale.scale
            grads = add_gradients(grads, tape.gradient(scaled, variables))
            stats = d_statistics(loss, real_scores, fake_scores)
            sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        return grads, _mean_stats(sums, total)

    def pl_replica(self, micro: list[tuple[tf.Tensor, tf.Tensor]], total: tf.Tensor, level: int,
                   fade: tf.Tensor) -> GradSums:
        """The two per-sample gradient sums of the path-length penalty (see lazy_regularization): gradient
        index i holds Σ(l_j − m)∇l_j and index n + i holds Σ∇l_j of variable i, both × 2·weight·interval/N."""
        m, variables = self.model, self.G.trainable_variables
        weight = 2.0 * m.pl_weight * m.g_reg_interval / total * self.G_scale.scale
        grads, sums = None, None
        for zk, yk in micro:
            with tf.GradientTape(persistent=True) as tape:
                w = self.train_dlatents(zk, level)
                with tf.GradientTape() as inner:
                    inner.watch(w)
                    with computing_in(self.G.synthesis, self.dtype), noise_from(self.rng):
                        images = self.G.synthesis(self.cast(w), level, self.cast(fade),
                                                  randomize_noise=True)
                    projection = tf.reduce_sum(tf.cast(images, tf.float32) * yk)
                lengths = path_lengths(inner.gradient(projection, w))
                centred = 0.5 * tf.reduce_sum(tf.square(lengths - self.pl_mean)) * weight
                plain = tf.reduce_sum(lengths) * weight
            grads = add_gradients(grads, tape.gradient(centred, variables) + tape.gradient(plain, variables))
            del tape
            stats = {"pl/length": tf.reduce_sum(lengths), "pl/length_sq": tf.reduce_sum(tf.square(lengths))}
            sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        return grads, _mean_stats(sums, total)

    def pl_combine(self, grads: dict[int, tf.Tensor], stats: dict[str, tf.Tensor]) -> GradSums:
        """Global sums → the penalty's gradient; advances pl_mean (cross-replica, after the all-reduce)."""
        variables, decay = self.G.trainable_variables, self.model.pl_decay
        n, mean_length = len(variables), stats["pl/length"]
        correction = pl_correction(self.pl_mean, mean_length, decay)
        combined = {i: grads[i] - correction * grads[n + i] for i in range(n) if i in grads}
        target = pl_mean_update(self.pl_mean, mean_length, decay)
        self.pl_mean.assign(target)
        penalty = pl_penalty(mean_length, stats["pl/length_sq"], target)
        return (zero_filled(combined, variables),
                {"loss/pl": penalty, "pl/length": mean_length, "pl/mean": target})

    # ---- steps (compiled once; `level` is always the full resolution) ----

    def _g_reg_step(self, batch: tf.Tensor, level: int) -> dict[str, tf.Tensor]:
        """Path-length step on `batch` fresh latents (a multiple of the replicas × accumulation)."""
        (height, width), channels = self.G.aspect.shape(self.G.resolution), self.G.num_channels
        z = self.latents(batch, level)
        # N(0, 1/(H·W)) per pixel
        y = self.share(self.rng.normal([batch, height, width, channels]) / math.sqrt(height * width), level)
        return self.apply_gradients(self._pl_grads, (z, y), batch, level, tf.constant(0.0), self.G_opt,
                                    self.G_scale, self.G.trainable_variables, combine=self.pl_combine)

    def _d_reg_step(self, reals: tf.Tensor, level: int) -> dict[str, tf.Tensor]:
        """R1 step on this worker's share of the D step's reals (and their labels, for a conditional D)."""
        reals, c = self.split_reals(reals)
        total = tf.shape(reals)[0] * self.workers
        draws = self.with_labels(self.draw(total, level), c)
        return self.apply_gradients(self._r1_grads, (reals, draws), total, level,
                                    tf.constant(0.0), self.D_opt, self.D_scale, self.D_trainables,
                                    combine=self.r1_combine)

    def iteration(self, data: Iterator[tf.Tensor], sched: ScheduleState,
                  schedule: ScheduleConfig) -> tuple[list[dict[str, tf.Tensor]], int]:
        """`minibatch_repeats` × the original's minibatch: G step, path-length step every g_reg_interval,
        D step and Gs update on fresh reals, R1 step on them every d_reg_interval. Each repeat reports the
        latest regularization statistics too."""
        if not self._told:
            self._told = True
            ignored = "lod_initial_resolution, lod_training_kimg, lod_transition_kimg, reset_opt_for_new_lod"
            if schedule.D_repeats != 1:
                ignored += f", D_repeats={schedule.D_repeats}"
            log.info("StyleGAN2 trains at full resolution from the first step: schedule.%s do not apply",
                     ignored.replace(", ", ", schedule."))
        m, level = self.model, sched.level
        fade = tf.constant(0.0)
        start = round(sched.kimg * 1000)
        pl_batch = tf.constant(pl_batch_size(sched.minibatch, m.pl_batch_shrink, self.parts))
        stats, shown = [], 0
        for _ in range(schedule.minibatch_repeats):
            count = int(self.minibatches.numpy())
            g_reg, d_reg = count % m.g_reg_interval == 0, count % m.d_reg_interval == 0
            self.minibatches.assign_add(1)
            out = dict(self.g_step(tf.constant(sched.minibatch), level, fade))
            if g_reg:
                self.reg_stats.update(self.g_reg_step(pl_batch, level))
            reals = next(data)
            out.update(self.d_step(reals, level, fade))
            beta = gs_beta(sched.minibatch, schedule.G_smoothing_kimg, schedule.G_smoothing_rampup,
                           start + shown)
            self.update_gs(tf.constant(beta, tf.float32))
            if d_reg:
                self.reg_stats.update(self.d_reg_step(reals, level))
            out.update(self.reg_stats)
            stats.append(out)
            shown += sched.minibatch
        return stats, shown

    def checkpoint_objects(self) -> dict[str, tf.Module | tf.Variable]:
        return {**super().checkpoint_objects(), "pl_mean": self.pl_mean, "minibatches": self.minibatches}

    def set_learning_rates(self, G_lrate: float, D_lrate: float) -> None:
        """The schedule's rates × interval / (interval + 1), as the original's lazy regularization."""
        super().set_learning_rates(G_lrate * self.lr_factors["G"], D_lrate * self.lr_factors["D"])

    def reset_optimizers(self) -> None:
        """StyleGAN2 never adds layers, so its Adam state (checkpointed) is never reset."""
