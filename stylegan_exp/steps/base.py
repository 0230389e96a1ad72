"""What every architecture's training steps are built on: optimizers, loss scaling, mixed precision, the
split of a batch over replicas and accumulated micro-batches, augmentation draws, Freeze-D, the G step and
the Gs moving average. An architecture subclasses `TrainingSteps` in its package with its D loss and its
iteration (the order of its steps, lazy regularization …); every step is traced once per resolution level.

A step takes this worker's share of the global minibatch (all of it with one worker; see
distribute.worker_rows) and splits it over its replicas (tf.distribute) and accumulated micro-batches;
every part's loss is its sum over samples divided by the global batch, so the summed gradients are
exactly those of the global mean loss. Latents and augmentation draws are made once per global batch,
before the split, so a split step sees the same (augmented) images as the whole-batch step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

import numpy as np
import tensorflow as tf

from stylegan_exp.augment import Draws, build_augmentation
from stylegan_exp.config import AugmentConfig, ModelConfig, Precision, ScheduleConfig
from stylegan_exp.nets.compiled import graph_function
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.layers import no_fade, noise_from
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.schedule import ScheduleState
from stylegan_exp.steps.adam import Adam, LossScale
from stylegan_exp.steps.freeze import frozen_blocks
from stylegan_exp.steps.losses import g_logistic_ns
from stylegan_exp.steps.precision import COMPUTE_DTYPES, computing_in, resolve_precision
from stylegan_exp.steps.replicas import part, replica_index, worker_rows

log = logging.getLogger(__name__)

# One replica's summed gradients (by variable index) and statistics, each already divided by the global batch.
GradSums = tuple[dict[int, tf.Tensor], dict[str, tf.Tensor]]
# Global sums → the gradients and statistics to apply (a loss that needs a global statistic).
Combine = Callable[[dict[int, tf.Tensor], dict[str, tf.Tensor]], GradSums]


def add_gradients(acc: dict[int, tf.Tensor] | None, grads: list[tf.Tensor | None]) -> dict[int, tf.Tensor]:
    """Gradients keyed by variable index; None ones (layers of levels not grown yet) are left out."""
    new = {i: g for i, g in enumerate(grads) if g is not None}
    return new if acc is None else {i: acc[i] + g for i, g in new.items()}


class TrainingSteps:
    """Owns the optimizers and the compiled steps; `level` is a Python int so each level traces once.

    Subclasses implement `d_replica` and `iteration`, and set up their own state in `setup`."""

    def __init__(self, G: Generator, D: Discriminator, Gs: Generator, model: ModelConfig, seed: int, *,
                 accumulate: int = 1, accumulate_dict: Mapping[int, int] | None = None,
                 strategy: tf.distribute.Strategy | None = None,
                 worker: tuple[int, int] = (0, 1), augment: AugmentConfig | None = None,
                 freeze_d: int = 0, labels: np.ndarray | None = None) -> None:
        """`accumulate` is schedule.accumulate, `accumulate_dict` gpus.accumulate_dict (by resolution);
        `worker` is (index, count) of this process among the strategy's workers; `augment` what D sees
        (default none); `freeze_d` is transfer.freeze_d; `labels` the training set's label vectors [count,
        c_dim] for a conditional model: its fakes' labels are drawn from them, as stylegan2-ada's."""
        self.accumulate_dict = dict(accumulate_dict or {})
        for key, k in (("schedule.accumulate", accumulate),
                       *((f"gpus.accumulate_dict[{r}]", v) for r, v in self.accumulate_dict.items())):
            if k < 1:
                raise ValueError(f"{key} must be >= 1, got {k}")
        self.G, self.D, self.Gs, self.model, self.accumulate_base = G, D, Gs, model, accumulate
        self.c_dim = G.c_dim
        self.label_table = None if labels is None else tf.constant(np.asarray(labels, np.float32))
        if (self.label_table is None) != (self.c_dim == 0):
            raise ValueError(f"a G conditional on {self.c_dim} labels trains with the dataset's label "
                             "vectors")
        self.accumulate = self.accumulation()  # at the full resolution
        self.strategy = strategy or tf.distribute.get_strategy()
        self.worker_index, self.workers = worker
        self.local_replicas = self.strategy.num_replicas_in_sync // self.workers
        precision = resolve_precision(model.precision)
        self.dtype = COMPUTE_DTYPES[precision]
        frozen, names = frozen_blocks(D, freeze_d)
        if frozen:
            log.info("Freeze-D: D's %s blocks keep their weights (%d variables, %d weights)",
                     ", ".join(names), len(frozen), sum(v.shape.num_elements() for v in frozen))
        frozen_ids = {id(v) for v in frozen}
        # What D's step trains: all of D but the frozen blocks.
        self.D_trainables = [v for v in D.trainable_variables if id(v) not in frozen_ids]
        with self.strategy.scope():
            self.augment = build_augmentation(augment, D.num_channels, static_shapes=model.jit_compile)
            self.G_opt = Adam(G.trainable_variables, name="G_opt")
            self.D_opt = Adam(self.D_trainables, name="D_opt")
            self.G_scale = LossScale(precision == Precision.mixed_float16, name="G_scale")
            self.D_scale = LossScale(precision == Precision.mixed_float16, name="D_scale")
            self.rng = tf.random.Generator.from_seed(seed)
        # XLA compiles the per-replica work; the cross-replica reduction and the update stay outside.
        # Without XLA the replica work is traced inline: a nested tf.function would hide it from
        # grappler's fusions (conv + bias + activation): 112 vs 126 img/s at 32² on 2 CPU cores.
        xla = model.jit_compile
        self._d_grads = graph_function(self.d_replica, jit_compile=True) if xla else self.d_replica
        self._g_grads = graph_function(self.g_replica, jit_compile=True) if xla else self.g_replica
        self.d_step = graph_function(self._d_step)
        self.g_step = graph_function(self._g_step)
        self.update_gs = graph_function(self._update_gs)
        self.setup()

    def accumulation(self, level: int | None = None) -> int:
        """Micro-batches per replica at `level` (default the full resolution): a Python int, so each level's
        steps trace with their own split."""
        resolution = 2 ** (self.G.resolution_log2 if level is None else level)
        return self.accumulate_dict.get(resolution, self.accumulate_base)

    def setup(self) -> None:
        """An architecture's own state (regularization statistics …), made after the shared one."""

    def cast(self, x: tf.Tensor | float) -> tf.Tensor:
        return tf.cast(x, self.dtype or tf.float32)

    def cast_fade(self, fade: tf.Tensor | float) -> tf.Tensor | float:
        """A stable lod's fade stays the Python 0 so the nets leave the lower level's path out."""
        return fade if no_fade(fade) else self.cast(fade)

    def latents(self, n: tf.Tensor | int, level: int | None = None) -> tf.Tensor:
        """This worker's rows of `n` fresh latents. A conditional model's row is z followed by its label,
        drawn from the training set's label vectors: drawn with z, before the batch is split."""
        z = self.rng.normal([n, self.G.latent_size])
        if self.c_dim:
            rows = self.rng.uniform([n], 0, tf.shape(self.label_table, out_type=tf.int64)[0], dtype=tf.int64)
            z = tf.concat([z, tf.gather(self.label_table, rows)], axis=1)
        return self.share(z, level)

    def split_latents(self, zk: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
        """A latent row as `latents` makes it → (z, its label or None)."""
        if not self.c_dim:
            return zk, None
        return zk[:, : self.G.latent_size], zk[:, self.G.latent_size :]

    def with_labels(self, draws: Draws, c: tf.Tensor | None) -> Draws:
        """D's per-image inputs besides the images: augmentation draws, and a conditional D's labels ("c");
        augmentations leave the labels untouched."""
        return draws if c is None else {**draws, "c": c}

    def train_dlatents(self, zk: tf.Tensor, level: int) -> tf.Tensor:
        m = self.model
        z, c = self.split_latents(zk)
        extra = {} if c is None else {"c": c}
        return self.G.train_dlatents(z, level, self.rng, m.style_mixing_prob, m.dlatent_avg_beta, **extra)

    def fakes(self, z: tf.Tensor, level: int, fade: tf.Tensor | float) -> tf.Tensor:
        w = self.train_dlatents(z, level)
        with computing_in(self.G.synthesis, self.dtype), noise_from(self.rng):
            return self.G.synthesis(self.cast(w), level, self.cast_fade(fade), randomize_noise=True)

    def draw(self, n: tf.Tensor | int, level: int | None = None) -> Draws:
        """Augmentation draws for `n` images of the global batch at `level`, this worker's rows ({} without
        augmentation); like the latents, drawn before the batch is split."""
        return tf.nest.map_structure(lambda rows: self.share(rows, level), self.augment.draw(self.rng, n))

    def scores(self, images: tf.Tensor, level: int, fade: tf.Tensor | float, draws: Draws) -> tf.Tensor:
        """D's scores of `images` as D sees them in training: augmented by their rows of `draws` (`draw`)."""
        if self.augment.enabled and not draws:
            raise ValueError("D is called without augmentation draws while augmentation is on; pass the "
                             "images' rows of TrainingSteps.draw")
        images = self.augment(images, draws)
        extra = {"c": self.cast(draws["c"])} if "c" in draws else {}
        with computing_in(self.D, self.dtype):
            return tf.cast(self.D(self.cast(images), level, self.cast_fade(fade), **extra), tf.float32)

    def g_replica(self, micro: list[tuple[tf.Tensor, Draws]], total: tf.Tensor, level: int,
                  fade: tf.Tensor | float) -> GradSums:
        """The non-saturating logistic G loss on one replica's micro-batches (latents, their draws)."""
        variables = self.G.trainable_variables
        grads, loss_sum = None, 0.0
        for zk, draws in micro:
            with tf.GradientTape() as tape:
                fakes = self.fakes(zk, level, fade)
                loss = tf.reduce_sum(g_logistic_ns(self.scores(fakes, level, fade, draws)))
                scaled = loss / total * self.G_scale.scale
            grads = add_gradients(grads, tape.gradient(scaled, variables))
            loss_sum += loss
        return grads, {"loss/G": loss_sum / total}

    def share(self, rows: tf.Tensor, level: int | None = None) -> tf.Tensor:
        """This worker's rows of a global batch at `level` (see replicas.worker_rows)."""
        if self.workers == 1:
            return rows
        positions = tf.range(tf.shape(rows)[0] // self.workers)
        mine = worker_rows(positions, workers=self.workers, index=self.worker_index,
                           local_replicas=self.local_replicas, accumulate=self.accumulation(level))
        return tf.gather(rows, mine)

    def apply_gradients(self, fn: Callable[..., GradSums], batch: tuple[tf.Tensor, ...], total: tf.Tensor,
                        level: int, fade: tf.Tensor | float, opt: Adam, scale: LossScale,
                        variables: list[tf.Variable], combine: Combine | None = None) -> dict[str, tf.Tensor]:
        """Run `fn` on every replica's micro-batches of this worker's share, sum gradients and statistics
        over all replicas in one batched all-reduce, update once. `combine` turns the global sums into the
        gradients to apply, for losses that need a global statistic (StyleGAN2's path-length mean)."""
        total = tf.cast(total, tf.float32)
        local, accumulate = self.local_replicas, self.accumulation(level)
        parts = local * accumulate

        def replica() -> GradSums:
            r = replica_index() - self.worker_index * self.local_replicas
            # Sliced where the input pipeline delivers batches, so a device receives only its part.
            with tf.device("CPU:0"):
                micro = [tf.nest.map_structure(lambda t, k=k: part(t, k * local + r, parts), batch)
                         for k in range(accumulate)]
            sums = fn(micro, total, level, fade)
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, sums)

        grads, stats = self.strategy.experimental_local_results(self.strategy.run(replica))[0]
        if combine is not None:
            grads, stats = combine(grads, stats)
        grads, finite = scale.unscale([grads.get(i) for i in range(len(variables))])
        if scale.dynamic:
            def update() -> tf.Tensor:
                opt.apply(grads, variables)
                return tf.constant(True)

            tf.cond(finite, update, lambda: tf.constant(False))
            scale.update(finite)
        else:
            opt.apply(grads, variables)
        return stats

    def split_reals(self, reals: tf.Tensor | tuple[tf.Tensor, tf.Tensor]
                    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """A batch from the reader → (images, their labels or None)."""
        return reals if isinstance(reals, tuple) else (reals, None)

    def _d_step(self, reals: tf.Tensor, level: int, fade: tf.Tensor | float) -> dict[str, tf.Tensor]:
        """`reals` is this worker's share of the global minibatch (with its labels for a conditional D)."""
        reals, c = self.split_reals(reals)
        total = tf.shape(reals)[0] * self.workers
        z = self.latents(total, level)
        real_draws = self.with_labels(self.draw(total, level), c)
        fake_draws = self.with_labels(self.draw(total, level), self.split_latents(z)[1])
        stats = self.apply_gradients(self._d_grads, (reals, z, real_draws, fake_draws), total, level, fade,
                                     self.D_opt, self.D_scale, self.D_trainables)
        if self.augment.enabled:
            self.augment.observe(stats["augment/rt"], total)
        return stats

    def _g_step(self, batch: tf.Tensor, level: int, fade: tf.Tensor | float) -> dict[str, tf.Tensor]:
        """`batch` is the global minibatch size."""
        z = self.latents(batch, level)
        draws = self.with_labels(self.draw(batch, level), self.split_latents(z)[1])
        return self.apply_gradients(self._g_grads, (z, draws), batch, level, fade,
                                    self.G_opt, self.G_scale, self.G.trainable_variables)

    def _update_gs(self, beta: tf.Tensor) -> None:
        """Gs ← lerp(G, Gs, beta) on trainables; non-trainables (w_avg, fixed noise) are copied."""
        for gs_var, g_var in zip(self.Gs.trainable_variables, self.G.trainable_variables, strict=True):
            gs_var.assign(g_var + (gs_var - g_var) * beta)
        pairs = zip(self.Gs.non_trainable_variables, self.G.non_trainable_variables, strict=True)
        for gs_var, g_var in pairs:
            gs_var.assign(g_var)

    def iteration(self, data: Iterator[tf.Tensor], sched: ScheduleState,
                  schedule: ScheduleConfig) -> tuple[list[dict[str, tf.Tensor]], int]:
        """One evaluation of the schedule: the architecture's steps on fresh minibatches from `data`; returns
        each repeat's statistics and the images shown."""
        raise NotImplementedError

    def d_replica(self, micro: list[tuple[tf.Tensor, tf.Tensor, Draws, Draws]], total: tf.Tensor, level: int,
                  fade: tf.Tensor | float) -> GradSums:
        """The architecture's main D loss on one replica's micro-batches (reals, latents, their draws): its
        gradients and statistics summed over the samples and divided by the global batch `total`."""
        raise NotImplementedError

    def checkpoint_objects(self) -> dict[str, tf.Module | tf.Variable]:
        """The training state a resumed run needs besides the networks; the keys are the checkpoint format."""
        objects = {"G_opt": self.G_opt, "D_opt": self.D_opt, "rng": self.rng, "G_loss_scale": self.G_scale,
                   "D_loss_scale": self.D_scale}
        if self.augment.variables:  # ADA's p: a resumed run continues with it
            objects["augment"] = self.augment
        return objects

    def log_state(self) -> dict[str, float]:
        """State the tick log reports besides the averaged step statistics (ADA's p)."""
        return self.augment.log_state()

    def set_learning_rates(self, G_lrate: float, D_lrate: float) -> None:
        self.G_opt.lr.assign(G_lrate)
        self.D_opt.lr.assign(D_lrate)

    def reset_optimizers(self) -> None:
        self.G_opt.reset()
        self.D_opt.reset()
