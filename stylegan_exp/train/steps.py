"""One D step, one G step and the Gs moving average, traced once per resolution level."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from stylegan_exp.data.records import fade_lod
from stylegan_exp.nets.discriminator import Discriminator
from stylegan_exp.nets.generator import Generator
from stylegan_exp.train.adam import Adam
from stylegan_exp.train.loss import d_logistic, g_logistic_ns, r1_penalty


@dataclass(frozen=True)
class StepConfig:
    r1_gamma: float = 10.0
    style_mixing_prob: float = 0.9
    dlatent_avg_beta: float = 0.995


class Steps:
    """Owns the optimizers and the compiled steps; `level` is a Python int so each level traces once."""

    def __init__(self, G: Generator, D: Discriminator, Gs: Generator, cfg: StepConfig, seed: int) -> None:
        self.G, self.D, self.Gs, self.cfg = G, D, Gs, cfg
        self.G_opt = Adam(G.trainable_variables, name="G_opt")
        self.D_opt = Adam(D.trainable_variables, name="D_opt")
        self.rng = tf.random.Generator.from_seed(seed)
        self.d_step = tf.function(self._d_step)
        self.g_step = tf.function(self._g_step)
        self.update_gs = tf.function(self._update_gs)

    def _fakes(self, batch: int, level: int, fade: tf.Tensor) -> tf.Tensor:
        z = self.rng.normal([batch, self.G.latent_size])
        w = self.G.train_dlatents(z, level, self.rng, self.cfg.style_mixing_prob, self.cfg.dlatent_avg_beta)
        return self.G.synthesis(w, level, fade, randomize_noise=True)

    def _d_step(self, reals: tf.Tensor, level: int, fade: tf.Tensor) -> dict[str, tf.Tensor]:
        reals = fade_lod(reals, fade)
        batch = tf.shape(reals)[0]
        fakes = self._fakes(batch, level, fade)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as r1_tape:
                r1_tape.watch(reals)
                real_scores = self.D(reals, level, fade)
                real_sum = tf.reduce_sum(real_scores)
            r1 = r1_penalty(r1_tape.gradient(real_sum, reals))
            fake_scores = self.D(fakes, level, fade)
            loss = tf.reduce_mean(d_logistic(real_scores, fake_scores) + r1 * (self.cfg.r1_gamma * 0.5))
        variables = self.D.trainable_variables
        self.D_opt.apply(tape.gradient(loss, variables), variables)
        return {
            "loss/D": loss,
            "loss/R1": tf.reduce_mean(r1),
            "score/real": tf.reduce_mean(real_scores),
            "score/fake": tf.reduce_mean(fake_scores),
        }

    def _g_step(self, batch: tf.Tensor, level: int, fade: tf.Tensor) -> dict[str, tf.Tensor]:
        variables = self.G.trainable_variables
        with tf.GradientTape() as tape:
            fake_scores = self.D(self._fakes(batch, level, fade), level, fade)
            loss = tf.reduce_mean(g_logistic_ns(fake_scores))
        self.G_opt.apply(tape.gradient(loss, variables), variables)
        return {"loss/G": loss}

    def _update_gs(self, beta: tf.Tensor) -> None:
        """Gs ← lerp(G, Gs, beta) on trainables; non-trainables (w_avg, fixed noise) are copied."""
        for gs_var, g_var in zip(self.Gs.trainable_variables, self.G.trainable_variables, strict=True):
            gs_var.assign(g_var + (gs_var - g_var) * beta)
        pairs = zip(self.Gs.non_trainable_variables, self.G.non_trainable_variables, strict=True)
        for gs_var, g_var in pairs:
            gs_var.assign(g_var)

    def set_learning_rates(self, G_lrate: float, D_lrate: float) -> None:
        self.G_opt.lr.assign(G_lrate)
        self.D_opt.lr.assign(D_lrate)

    def reset_optimizers(self) -> None:
        self.G_opt.reset()
        self.D_opt.reset()
