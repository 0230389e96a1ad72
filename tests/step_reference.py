"""The original training iteration, restated for tests/test_step_parity.py from NVlabs/stylegan
(training/training_loop.py, training/loss.py, training/networks_stylegan.py G_style,
dnnlib/tflib/optimizer.py) and NVlabs/stylegan2 (training/training_loop.py, training/loss.py,
training/networks_stylegan2.py G_main).

Only the networks' forward passes are borrowed from the package: our mapping, synthesis and discriminator
modules, proven equal to the original's at any lod by tests/test_legacy.py and test_stylegan2_legacy.py.
Everything a training step adds is written here again, in eager TensorFlow (GradientTape) and NumPy,
without importing stylegan_exp.train: the tracked w average and style mixing with its cutoff at the current
lod, process_reals' fade and upscale to the full resolution (D sees full-size images, R1 is measured on
them), the losses and their per-GPU means, R1 and path-length terms, the lazy intervals with their Adam
rescaling, Adam as tf.train.AdamOptimizer, the Gs average and training_loop.py's order. Hyper-parameters are
the original defaults written below, not read from our configs.

Random draws are replayed: the reference reads a tf.random.Generator from the state ours starts from, in the
order ours reads it (latents, then the mixing latents, coin and cutoff, then each layer's noise; for the
path-length step the latents and the projection images first). The original draws from TF1's op-seeded
stream, which nobody can reproduce; what must match is what is drawn (shapes, distributions, per step or
per minibatch), and a draw that moved makes every later number differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from stylegan_exp.nets.layers import noise_from

# The originals' defaults (stylegan train.py / training_loop.py / loss.py / G_style; stylegan2 run_training.py
# config F / training_loop.py / loss.py / G_main).
R1_GAMMA = 10.0
STYLE_MIXING_PROB = 0.9
DLATENT_AVG_BETA = 0.995
ADAM = {"beta1": 0.0, "beta2": 0.99, "epsilon": 1e-8}
PL_WEIGHT, PL_DECAY, PL_MINIBATCH_SHRINK = 2.0, 0.01, 2
G_REG_INTERVAL, D_REG_INTERVAL = 4, 16


def lerp(a, b, t):
    """tflib.lerp: a + (b - a) * t."""
    return a + (b - a) * t


def nearest_upscale(x: tf.Tensor, factor: int) -> tf.Tensor:
    """process_reals' UpscaleLOD and G_synthesis' `upscale2d(img, 2**lod)` (NHWC): reshape + tile."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    x = tf.reshape(x, [-1, h, 1, w, 1, c])
    x = tf.tile(x, [1, 1, factor, 1, factor, 1])
    return tf.reshape(x, [-1, h * factor, w * factor, c])


def box_downscale(x: tf.Tensor, factor: int) -> tf.Tensor:
    """D_basic's `downscale2d(images_in, 2**lod)`: the mean of factor × factor blocks."""
    if factor == 1:
        return x
    n, h, w, c = x.shape
    return tf.reduce_mean(tf.reshape(x, [-1, h // factor, factor, w // factor, factor, c]), axis=[2, 4])


def process_reals(x: tf.Tensor, lod: float) -> tf.Tensor:
    """training_loop.py process_reals after the dynamic range (mirror off): blend with the 2×2 box-filtered
    image by lod - floor(lod) at the data's resolution, then upscale to the network's full resolution."""
    y = nearest_upscale(box_downscale(x, 2), 2)
    x = lerp(x, y, lod - math.floor(lod))
    return nearest_upscale(x, 2 ** math.floor(lod))


class TF1Adam:
    """tf.train.AdamOptimizer as dnnlib/tflib/optimizer.py applies it, in float64: the beta powers start at
    beta and are multiplied by it after every application; lr_t = lr·√(1-β2ᵗ)/(1-β1ᵗ);
    m ← β1 m + (1-β1) g; v ← β2 v + (1-β2) g²; w ← w - lr_t·m/(√v + ε). A zero gradient is applied like
    any other (tflib's Optimizer turns disconnected gradients into zeros)."""

    def __init__(self, lr: float, beta1: float, beta2: float, epsilon: float, m: list[np.ndarray],
                 v: list[np.ndarray], applied: int) -> None:
        self.lr, self.beta1, self.beta2, self.epsilon = lr, beta1, beta2, epsilon
        self.m = [a.astype(np.float64) for a in m]
        self.v = [a.astype(np.float64) for a in v]
        self.beta1_power, self.beta2_power = beta1 ** (applied + 1), beta2 ** (applied + 1)

    def apply(self, grads: list[np.ndarray], variables: list[tf.Variable]) -> None:
        lr_t = self.lr * math.sqrt(1.0 - self.beta2_power) / (1.0 - self.beta1_power)
        for i, (g, var) in enumerate(zip(grads, variables, strict=True)):
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * np.square(g)
            w = var.numpy().astype(np.float64) - lr_t * self.m[i] / (np.sqrt(self.v[i]) + self.epsilon)
            var.assign(w.astype(np.float32))
        self.beta1_power *= self.beta1
        self.beta2_power *= self.beta2


def gradients(tape: tf.GradientTape, loss: tf.Tensor, variables: list[tf.Variable]) -> list[np.ndarray]:
    """float64 gradients; disconnected ones are zeros, as tflib's Optimizer registers them."""
    grads = tape.gradient(loss, variables)
    return [np.zeros(v.shape) if g is None else g.numpy().astype(np.float64)
            for g, v in zip(grads, variables, strict=True)]


State = dict[str, list[np.ndarray]]


@dataclass
class Record:
    """What a training op leaves behind: its name, its statistics and the state after it."""

    name: str
    stats: dict[str, float]
    state: State = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # Adam updates so far, for a state loaded from ours


class OriginalIteration:
    """One evaluation of the schedule of the original training loop on our network objects.

    `stylegan2=False`: NVlabs/stylegan — minibatch_repeats × (D_repeats × [D step with R1
    (D_logistic_simplegp) run together with the Gs update], then the G step (G_logistic_nonsaturating)).
    `stylegan2=True`: NVlabs/stylegan2 — minibatch_repeats × (G step, path-length step when
    running_mb_counter % G_reg_interval == 0, D step (D_logistic) with the Gs update, R1 step when
    running_mb_counter % D_reg_interval == 0), the four optimizers at lr·r, β^r with r = I/(I+1), each reg
    optimizer sharing its network's Adam state.

    The state (`state()`, `load()`): every variable of G, D and Gs, both Adam states, pl_mean and the random
    generator's position. `sync(i)` may return a state to start op i from (see test_step_parity).
    """

    def __init__(self, G: tf.Module, D: tf.Module, Gs: tf.Module, *, lod: float, minibatch: int,
                 G_lrate: float, D_lrate: float, G_smoothing_kimg: float, stylegan2: bool = False,
                 running_mb_counter: int = 0, rng_alg: int = 1) -> None:
        self.G, self.D, self.Gs = G, D, Gs
        self.lod, self.minibatch, self.stylegan2 = lod, minibatch, stylegan2
        self.resolution_log2 = G.resolution_log2
        self.num_layers = self.resolution_log2 * 2 - 2  # G_synthesis: one style per layer
        self.Gs_beta = 0.5 ** (minibatch / (G_smoothing_kimg * 1000.0)) if G_smoothing_kimg > 0 else 0.0
        self.running_mb_counter = running_mb_counter
        self.rng_alg = rng_alg
        self.rng: tf.random.Generator | None = None
        self.pl_mean = 0.0
        self.sync: Callable[[int], tuple[State, dict[str, int]] | None] = lambda index: None
        self.records: list[Record] = []
        self.opt_args = {"G": dict(ADAM, lr=G_lrate), "D": dict(ADAM, lr=D_lrate)}
        if stylegan2:
            # stylegan2 training_loop.py: feed_dict's lrate_in is sched.G_lrate for every optimizer.
            self.opt_args["D"]["lr"] = G_lrate
            for key, interval in (("G", G_REG_INTERVAL), ("D", D_REG_INTERVAL)):
                ratio = interval / (interval + 1)
                self.opt_args[key]["lr"] *= ratio
                self.opt_args[key]["beta1"] **= ratio
                self.opt_args[key]["beta2"] **= ratio
        self.G_opt: TF1Adam | None = None
        self.D_opt: TF1Adam | None = None

    def load(self, state: State, applied: dict[str, int]) -> None:
        """Start from `state`; `applied` counts each Adam's updates so far (its beta powers)."""
        for net, module in (("G", self.G), ("D", self.D), ("Gs", self.Gs)):
            for var, value in zip(module.variables, state[net], strict=True):
                var.assign(value)
        self.G_opt = TF1Adam(**self.opt_args["G"], m=state["G_m"], v=state["G_v"], applied=applied["G"])
        self.D_opt = TF1Adam(**self.opt_args["D"], m=state["D_m"], v=state["D_v"], applied=applied["D"])
        self.pl_mean = float(state["pl_mean"][0])
        self.rng = tf.random.Generator.from_state(state["rng"][0], alg=self.rng_alg)

    def state(self) -> State:
        state = {net: [v.numpy() for v in module.variables]
                 for net, module in (("G", self.G), ("D", self.D), ("Gs", self.Gs))}
        state["G_m"], state["G_v"] = list(self.G_opt.m), list(self.G_opt.v)
        state["D_m"], state["D_v"] = list(self.D_opt.m), list(self.D_opt.v)
        state["pl_mean"] = [np.float64(self.pl_mean)]
        state["rng"] = [self.rng.state.numpy()]
        return state

    # ---- the networks as the training graph calls them (is_training=True) ----

    @property
    def level(self) -> int:
        return self.resolution_log2 - math.floor(self.lod)

    @property
    def fade(self) -> float:
        return self.lod - math.floor(self.lod)

    def _broadcast(self, w: tf.Tensor) -> tf.Tensor:
        return tf.tile(w[:, None, :], [1, self.num_layers, 1])

    def dlatents(self, latents: tf.Tensor) -> tf.Tensor:
        """G_style / G_main before synthesis: map, track dlatent_avg on the unmixed w, mix at the current
        lod (cur_layers = num_layers - 2·int(lod): the fading level's styles take part)."""
        G = self.G
        dlatents = self._broadcast(G.mapping(latents))
        batch_avg = tf.reduce_mean(dlatents[:, 0], axis=0)
        G.w_avg.assign(lerp(batch_avg, G.w_avg, DLATENT_AVG_BETA))
        latents2 = self.rng.normal(tf.shape(latents))
        dlatents2 = self._broadcast(G.mapping(latents2))
        cur_layers = self.num_layers - int(self.lod) * 2
        coin = self.rng.uniform([])
        drawn = self.rng.uniform([], 1, cur_layers, dtype=tf.int32)  # the original draws it only when mixing
        mixing_cutoff = drawn if float(coin) < STYLE_MIXING_PROB else cur_layers
        layer_idx = np.arange(self.num_layers)[np.newaxis, :, np.newaxis]
        return tf.where(layer_idx < mixing_cutoff, dlatents, dlatents2)

    def synthesis(self, dlatents: tf.Tensor) -> tf.Tensor:
        """G_synthesis at lod, upscaled to the full resolution (`upscale2d(img, 2**lod)`)."""
        with noise_from(self.rng):
            images = self.G.synthesis(dlatents, self.level, self.fade, randomize_noise=True)
        return nearest_upscale(images, 2 ** math.floor(self.lod))

    def scores(self, images: tf.Tensor) -> tf.Tensor:
        """D_basic / D_stylegan2 on full-resolution images: box-downscaled by 2**floor(lod) first."""
        return self.D(box_downscale(images, 2 ** math.floor(self.lod)), self.level, self.fade)

    # ---- the training ops ----

    def _op(self, name: str, op: Callable[..., dict[str, tf.Tensor | float]], *args: tf.Tensor) -> None:
        synced = self.sync(len(self.records))
        if synced is not None:
            self.load(*synced)
        stats = op(*args)
        self.records.append(Record(name, {k: float(v) for k, v in stats.items()}, self.state()))

    def D_step(self, reals: tf.Tensor) -> dict[str, tf.Tensor]:
        """D_logistic_simplegp (StyleGAN: R1 in the loss) or D_logistic (StyleGAN2), mean over the
        minibatch: fresh latents, the reals as process_reals leaves them."""
        variables = self.D.trainable_variables
        latents = self.rng.normal([self.minibatch, self.G.latent_size])
        fake_images = self.synthesis(self.dlatents(latents))
        reals = process_reals(reals, self.lod)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(reals)
                real_scores = self.scores(reals)
                real_loss = tf.reduce_sum(real_scores)
            fake_scores = self.scores(fake_images)
            loss = tf.nn.softplus(fake_scores) + tf.nn.softplus(-real_scores)
            stats = {"score/real": tf.reduce_mean(real_scores), "score/fake": tf.reduce_mean(fake_scores)}
            if not self.stylegan2:
                real_grads = r1_tape.gradient(real_loss, reals)
                r1_penalty = tf.reduce_sum(tf.square(real_grads), axis=[1, 2, 3])
                loss += r1_penalty * (R1_GAMMA * 0.5)
                stats["loss/R1"] = tf.reduce_mean(r1_penalty)
            mean_loss = tf.reduce_mean(loss)
        self.D_opt.apply(gradients(tape, mean_loss, variables), variables)
        return {"loss/D": mean_loss, **stats}

    def Gs_update(self) -> dict[str, tf.Tensor]:
        """Gs.setup_as_moving_average_of(G, beta): lerp(G, Gs, beta) on trainables; non-trainables (w_avg,
        fixed noise) with beta_nontrainable = 0, i.e. copied."""
        Gs, G = self.Gs, self.G
        for gs_var, g_var in zip(Gs.trainable_variables, G.trainable_variables, strict=True):
            g, gs = g_var.numpy().astype(np.float64), gs_var.numpy().astype(np.float64)
            gs_var.assign(lerp(g, gs, self.Gs_beta).astype(np.float32))
        for gs_var, g_var in zip(Gs.non_trainable_variables, G.non_trainable_variables, strict=True):
            gs_var.assign(g_var)
        return {}

    def G_step(self) -> dict[str, tf.Tensor]:
        """G_logistic_nonsaturating / G_logistic_ns: mean softplus(-D(G(z))) over fresh latents."""
        variables = self.G.trainable_variables
        latents = self.rng.normal([self.minibatch, self.G.latent_size])
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softplus(-self.scores(self.synthesis(self.dlatents(latents)))))
        self.G_opt.apply(gradients(tape, loss, variables), variables)
        return {"loss/G": loss}

    def G_reg_step(self) -> dict[str, tf.Tensor]:
        """G_logistic_ns_pathreg's reg on minibatch // pl_minibatch_shrink fresh latents, pl_mean a tensor of
        this batch's lengths (its update is the assign the penalty depends on), times G_reg_interval."""
        variables = self.G.trainable_variables
        pl_minibatch = self.minibatch // PL_MINIBATCH_SHRINK
        res, channels = 2**self.resolution_log2, self.G.num_channels
        pl_latents = self.rng.normal([pl_minibatch, self.G.latent_size])
        pl_noise = self.rng.normal([pl_minibatch, res, res, channels]) / np.sqrt(res * res)
        with tf.GradientTape() as tape:
            fake_dlatents = self.dlatents(pl_latents)
            with tf.GradientTape() as pl_tape:
                pl_tape.watch(fake_dlatents)
                fake_images = self.synthesis(fake_dlatents)
                projection = tf.reduce_sum(fake_images * pl_noise)
            pl_grads = pl_tape.gradient(projection, fake_dlatents)
            pl_lengths = tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(pl_grads), axis=2), axis=1))
            pl_mean = self.pl_mean + PL_DECAY * (tf.reduce_mean(pl_lengths) - self.pl_mean)
            pl_penalty = tf.square(pl_lengths - pl_mean)
            reg = pl_penalty * PL_WEIGHT
            loss = tf.reduce_mean(reg * G_REG_INTERVAL)
        self.G_opt.apply(gradients(tape, loss, variables), variables)
        self.pl_mean = float(pl_mean)
        return {"loss/pl": tf.reduce_mean(pl_penalty), "pl/length": tf.reduce_mean(pl_lengths),
                "pl/mean": pl_mean}

    def D_reg_step(self, reals: tf.Tensor) -> dict[str, tf.Tensor]:
        """D_logistic_r1's reg on the D step's reals (reals_var), times D_reg_interval."""
        variables = self.D.trainable_variables
        reals = process_reals(reals, self.lod)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(reals)
                real_loss = tf.reduce_sum(self.scores(reals))
            real_grads = r1_tape.gradient(real_loss, reals)
            gradient_penalty = tf.reduce_sum(tf.square(real_grads), axis=[1, 2, 3])
            reg = gradient_penalty * (R1_GAMMA * 0.5)
            loss = tf.reduce_mean(reg * D_REG_INTERVAL)
        self.D_opt.apply(gradients(tape, loss, variables), variables)
        return {"loss/R1": tf.reduce_mean(gradient_penalty)}

    def run(self, data: Iterator[tf.Tensor], minibatch_repeats: int, D_repeats: int = 1) -> list[Record]:
        """training_loop.py's `for _mb_repeat in range(minibatch_repeats)` body."""
        for _ in range(minibatch_repeats):
            if not self.stylegan2:
                for _ in range(D_repeats):
                    # tflib.run([D_train_op, Gs_update_op]): Gs reads G, which the D step leaves alone (Gs
                    # copies G's dlatent_avg before or after the D step's update: the two ops are unordered).
                    self._op("d_step", self.D_step, next(data))
                    self._op("update_gs", self.Gs_update)
                self._op("g_step", self.G_step)
                continue
            run_G_reg = self.running_mb_counter % G_REG_INTERVAL == 0
            run_D_reg = self.running_mb_counter % D_REG_INTERVAL == 0
            self.running_mb_counter += 1
            self._op("g_step", self.G_step)  # with data_fetch_op: the reals below are fetched now
            reals = next(data)
            if run_G_reg:
                self._op("g_reg_step", self.G_reg_step)
            self._op("d_step", self.D_step, reals)
            self._op("update_gs", self.Gs_update)
            if run_D_reg:
                self._op("d_reg_step", self.D_reg_step, reals)
        return self.records
