"""StyleGAN2 training: lazy regularization formulas, the original's iteration order, the path-length gradient
against plain autodiff of the original loss, mixed precision, and the loop (full resolution, ADA and Freeze-D,
train.py + sample.py). Split steps against whole-batch steps: test_accumulate.py and test_distribute.py; NaN
rollback and the checkpointed pl_mean: test_resume.py; 2 workers: test_distribute.py."""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config, run_script, ticks_of
from split_steps import MODELS, build_steps

from stylegan_exp.config import to_object
from stylegan_exp.models import load_snapshot
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.models.stylegan2.lazy_regularization import (
    lazy_adam,
    path_lengths,
    pl_batch_size,
    pl_correction,
    pl_mean_update,
    pl_penalty,
)
from stylegan_exp.schedule import ScheduleState
from stylegan_exp.train.loop import Trainer

MODEL = MODELS["stylegan2"]  # no noise and no style mixing
RES, BATCH = 8, 8


def sg2_steps(**kwargs):
    """StyleGAN2's steps on the tiny networks (linear first Adam step: see split_steps.build_steps)."""
    return build_steps(arch="stylegan2", **kwargs)


# ---------------------------------------------------------------------------------------------------
# Pure formulas.


def test_lazy_adam_rescaling_is_the_originals():
    lr, b1, b2 = lazy_adam(0.002, 0.0, 0.99, 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and b1 == 0.0 and b2 == pytest.approx(0.99 ** (16 / 17))
    assert lazy_adam(0.002, 0.0, 0.99, 4)[0] == pytest.approx(0.0016)
    with pytest.raises(ValueError, match=">= 1"):
        lazy_adam(0.002, 0.0, 0.99, 0)


def test_pl_batch_is_half_the_minibatch_in_whole_parts():
    assert pl_batch_size(32, 2, 1) == 16
    assert pl_batch_size(32, 2, 8) == 16 and pl_batch_size(8, 2, 8) == 8 and pl_batch_size(12, 2, 4) == 4
    with pytest.raises(ValueError, match="pl_batch_shrink"):
        pl_batch_size(8, 0, 1)


def test_path_length_formulas():
    g = np.random.default_rng(0).standard_normal((5, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(path_lengths(tf.constant(g)).numpy(),
                               np.sqrt((g**2).sum(axis=2).mean(axis=1)), rtol=1e-6)
    lengths = np.array([0.5, 1.5, 2.0, 1.0])
    target = float(pl_mean_update(0.3, lengths.mean(), 0.01))
    assert target == pytest.approx(0.3 + 0.01 * (lengths.mean() - 0.3))
    penalty = pl_penalty(tf.constant(float(lengths.mean())), tf.constant(float((lengths**2).mean())),
                         tf.constant(target))
    assert float(penalty) == pytest.approx(((lengths - target) ** 2).mean())
    assert float(pl_correction(0.3, 1.0, 0.01)) == pytest.approx(0.01 * 1.99 * 0.7)


def test_schedule_without_growing_is_full_resolution_throughout():
    from stylegan_exp.schedule import training_schedule

    cfg = to_object(compose_config("train", "model=stylegan2"))
    for kimg in (0, 700, 5000):
        sched = training_schedule(kimg * 1000, cfg.schedule, cfg.gpus, 64, growing=False)
        assert (sched.lod, sched.resolution, sched.level, sched.fade) == (0.0, 64, 6, 0.0)
    assert training_schedule(0, cfg.schedule, cfg.gpus, 64).resolution == 8  # StyleGAN grows from 8²


# ---------------------------------------------------------------------------------------------------
# The steps against the original's formulas.


def test_path_length_step_equals_autodiff_of_the_original_loss():
    """pl gradient = ∇ weight·interval·mean (l − a)² with a = m + decay (mean l − m) flowing into the
    gradient, as loss.py's G_logistic_ns_pathreg (here with pl_mean m = 0.3 already tracked)."""
    steps = sg2_steps(res=16)
    steps.pl_mean.assign(0.3)
    G, m, n = steps.G, MODEL, 4
    z = tf.random.stateless_normal([n, m.latent_size], [1, 2])
    y = tf.random.stateless_normal([n, 16, 16, 3], [3, 4]) / 16.0
    variables = G.trainable_variables
    with tf.GradientTape() as tape:
        w = G.map(z)
        with tf.GradientTape() as inner:
            inner.watch(w)
            projection = tf.reduce_sum(G.synthesis(w, 4, randomize_noise=False) * y)
        lengths = path_lengths(inner.gradient(projection, w))
        target = 0.3 + m.pl_decay * (tf.reduce_mean(lengths) - 0.3)
        loss = tf.reduce_mean(tf.square(lengths - target)) * m.pl_weight * m.g_reg_interval
    expected = tape.gradient(loss, variables)

    sums = steps.pl_replica([(z, y)], tf.constant(float(n)), 4, tf.constant(0.0))
    grads, stats = steps.pl_combine(*sums)
    worst = max(float(tf.reduce_max(tf.abs(grads[i] - e)) / (tf.reduce_max(tf.abs(e)) + 1e-12))
                for i, e in enumerate(expected) if e is not None)
    assert worst < 1e-4, worst
    unreached = [i for i, e in enumerate(expected) if e is None]  # the last toRGB bias: zero, as the original
    assert unreached and all(not np.any(grads[i].numpy()) for i in unreached)
    assert float(steps.pl_mean) == pytest.approx(float(target), rel=1e-6)
    assert float(stats["loss/pl"]) == pytest.approx(float(loss) / (m.pl_weight * m.g_reg_interval), rel=1e-4)


def test_r1_step_is_gamma_half_interval_times_gradient_norm():
    steps = sg2_steps()
    reals = tf.random.stateless_uniform([BATCH, RES, RES, 3], [5, 6], -1.0, 1.0)
    variables = steps.D.trainable_variables
    with tf.GradientTape() as tape:
        with tf.GradientTape() as r1_tape:
            r1_tape.watch(reals)
            score_sum = tf.reduce_sum(steps.D(reals))
        r1 = tf.reduce_sum(tf.square(r1_tape.gradient(score_sum, reals)), axis=[1, 2, 3])
        loss = tf.reduce_mean(r1 * (MODEL.r1_gamma * 0.5) * MODEL.d_reg_interval)
    expected = tape.gradient(loss, variables)
    micro = [(reals, steps.draw(BATCH))]  # no augmentation: empty draws
    sums = steps.r1_replica(micro, tf.constant(float(BATCH)), 3, tf.constant(0.0))
    grads, stats = steps.r1_combine(*sums)
    for i, e in enumerate(expected):
        want = np.zeros(variables[i].shape) if e is None else e.numpy()  # D's output bias: zero
        np.testing.assert_allclose(grads[i].numpy(), want, rtol=1e-4, atol=1e-7)
    assert float(stats["loss/R1"]) == pytest.approx(float(tf.reduce_mean(r1)), rel=1e-5)


def test_optimizers_are_rescaled_for_lazy_regularization():
    steps = sg2_steps()
    steps.set_learning_rates(0.002, 0.002)
    assert float(steps.G_opt.lr) == pytest.approx(0.002 * 4 / 5)
    assert float(steps.D_opt.lr) == pytest.approx(0.002 * 16 / 17)
    assert steps.G_opt.beta1 == 0.0 and steps.G_opt.beta2 == pytest.approx(0.99 ** 0.8)
    assert steps.D_opt.beta2 == pytest.approx(0.99 ** (16 / 17))
    assert set(steps.checkpoint_objects()) >= {"G_opt", "D_opt", "rng", "pl_mean"}


def test_iteration_order_and_lazy_intervals(caplog):
    """Per minibatch: G step, path-length step when count % 4 == 0, D step + Gs update on fresh reals,
    R1 on those reals when count % 16 == 0; the latest regularization statistics ride along."""
    caplog.set_level(logging.INFO)
    steps = sg2_steps()
    calls = []

    def record(name, result):
        def fn(*args):
            calls.append(name if name != "D_reg" else ("D_reg", args[0].numpy()[0, 0, 0, 0]))
            return dict(result)
        return fn

    steps.g_step = record("G", {"loss/G": 1.0})
    steps.g_reg_step = record("G_reg", {"loss/pl": 2.0})
    steps.d_step = record("D", {"loss/D": 3.0})
    steps.update_gs = record("Gs", {})
    steps.d_reg_step = record("D_reg", {"loss/R1": 4.0})
    batches = iter([tf.fill([BATCH, RES, RES, 3], float(i)) for i in range(20)])
    sched = ScheduleState(kimg=0, lod=0.0, resolution=RES, minibatch=BATCH, G_lrate=0.002, D_lrate=0.002,
                          tick_kimg=1)
    schedule = to_object(compose_config("train", "schedule.minibatch_repeats=4",
                                        "schedule.D_repeats=2")).schedule
    out = []
    for _ in range(5):
        stats, shown = steps.iteration(batches, sched, schedule)
        assert shown == 4 * BATCH
        out += stats
    per_batch = "".join("|" if c == "G" else "r" if c == "G_reg" else "d" if c == "D" else "s" if c == "Gs"
                        else "R" for c in calls)
    assert per_batch == ("|rdsR" + "|ds" * 3 + ("|rds" + "|ds" * 3) * 3 + "|rdsR" + "|ds" * 3)
    assert [c[1] for c in calls if isinstance(c, tuple)] == [0.0, 16.0]  # R1 on the D step's reals
    assert all(s == {"loss/G": 1.0, "loss/pl": 2.0, "loss/D": 3.0, "loss/R1": 4.0} for s in out)
    assert "full resolution from the first step" in caplog.text and "D_repeats=2" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_steps_are_finite(precision):
    model = dataclasses.replace(MODEL, precision=precision, use_noise=True, style_mixing_prob=0.9)
    steps = sg2_steps(model=model, res=16)
    reals = tf.random.uniform([BATCH, 16, 16, 3], -1, 1)
    for _ in range(2):
        out = steps.g_step(tf.constant(BATCH), 4, tf.constant(0.0))
        out.update(steps.g_reg_step(tf.constant(BATCH // 2), 4))
        out.update(steps.d_step(reals, 4, tf.constant(0.0)))
        out.update(steps.d_reg_step(reals, 4))
        assert all(np.isfinite(float(v)) for v in out.values()), out
    variables = steps.G.trainable_variables + steps.D.trainable_variables
    assert all(bool(tf.reduce_all(tf.math.is_finite(v))) and v.dtype == tf.float32 for v in variables)
    assert float(steps.pl_mean) > 0


# ---------------------------------------------------------------------------------------------------
# The loop.


@pytest.mark.slow
def test_ada_and_freeze_d_train_stylegan2(tiny_cfg, tmp_path):
    """model=stylegan2 with augment=ada and transfer.freeze_d=1: p rises and is logged per tick, and the
    frozen 16² block (with its fromRGB) keeps its weights while the rest of D trains."""
    trainer = Trainer(tiny_cfg("augment=ada", "augment.target=-1", "augment.ada_kimg=2",
                               "transfer.freeze_d=1", "schedule.total_kimg=0.3", arch="stylegan2"),
                      tmp_path / "run")
    frozen = [v.numpy() for v in trainer.D.blocks[-1].trainable_variables]
    trained = [v.numpy() for v in trainer.D.blocks[0].trainable_variables]
    trainer.run()
    p = [t["augment/p"] for t in ticks_of(tmp_path / "run")]
    assert p == sorted(p) and p[-1] > 0.05
    for before, var in zip(frozen, trainer.D.blocks[-1].trainable_variables, strict=True):
        np.testing.assert_array_equal(var.numpy(), before)
    assert any(not np.array_equal(v.numpy(), b)
               for b, v in zip(trained, trainer.D.blocks[0].trainable_variables, strict=True))


@pytest.mark.slow
def test_trains_at_full_resolution(stylegan2_run):
    ticks = stylegan2_run.ticks
    assert all(t["lod"] == 0.0 and t["resolution"] == 16 for t in ticks)
    assert {"loss/pl", "pl/mean", "loss/R1", "loss/G", "loss/D"} <= set(ticks[0])
    assert all(math.isfinite(t[k]) for t in ticks for k in ("loss/pl", "loss/R1", "loss/G", "loss/D"))


def test_train_py_then_sample_py(stylegan2_run, tmp_path):
    """The session's train.py model=stylegan2 run (accumulated, bfloat16, wandb offline): its snapshot records
    the architecture and sample.py reads it."""
    snap = load_snapshot(stylegan2_run.snapshots[-1])
    assert isinstance(snap.model, StyleGAN2Config) and snap.resolution == 16
    assert list((stylegan2_run.run_dir / "wandb").glob("offline-run-*"))
    out = stylegan2_run.copy_to(tmp_path / "outputs").outputs  # sample.py writes beside the run
    run_script("sample.py", "name=tiny", f"outputs_root={out}", "seeds=[1,2]", cwd=tmp_path)
    (samples,) = (out / "tiny").glob("samples-*")
    assert sorted(p.name for p in samples.glob("*.png")) == ["example-1.png", "example-2.png"]
