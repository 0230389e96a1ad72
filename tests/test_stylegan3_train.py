"""StyleGAN3 training (training/loss.py, training_loop.py of NVlabs/stylegan3): the blur schedule and filter,
lazy R1's Adam rescaling, the magnitude-EMA decay, which step moves the EMAs, refused settings, and a tiny
config-R run through the house's loop whose checkpoint resumes its state and whose snapshot transfers."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config, ticks_of

from stylegan_exp.config import ConfigError, to_object, typed_model
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot
from stylegan_exp.models.stylegan3 import training as sg3_training
from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.models.stylegan3.generator import magnitude_ema_beta
from stylegan_exp.models.stylegan3.training import StyleGAN3Steps, blur_images, blur_sigma_at, lazy_ratio
from stylegan_exp.nets.weights import weights_of
from stylegan_exp.train.loop import Trainer

TINY = ["+experiment=tiny_stylegan3", "logger=none"]
sg3_training_beta = sg3_training.gs_beta


def tiny_cfg(tmp_path, *overrides: str):
    return to_object(compose_config("train", *TINY, f"outputs_root={tmp_path / 'outputs'}",
                                    f"dataset.path={tmp_path / 'synthetic-16'}", *overrides))


def test_blur_fades_linearly_and_the_ema_decay_is_train_pys():
    assert blur_sigma_at(0.0, 10.0, 200.0) == 10.0 and blur_sigma_at(50.0, 10.0, 200.0) == pytest.approx(7.5)
    assert blur_sigma_at(250.0, 10.0, 200.0) == 0.0 and blur_sigma_at(0.0, 10.0, 0.0) == 0.0
    assert magnitude_ema_beta(32, 20.0) == pytest.approx(0.5 ** (32 / 20000))
    assert lazy_ratio(16) == pytest.approx(16 / 17)
    with pytest.raises(ConfigError, match="d_reg_interval"):
        lazy_ratio(0)


@pytest.mark.parametrize("sigma", [0.9, 1.7])
def test_blur_is_the_originals_filter(sigma):
    """loss.py's run_D: taps 2^-(k/σ)² for |k| ≤ ⌊3σ⌋, normalized, separable, zero padded."""
    images = np.random.default_rng(0).standard_normal((2, 12, 12, 3))
    size = math.floor(3 * sigma)
    k = np.arange(-size, size + 1)
    f = np.exp2(-np.square(k / sigma))
    f /= f.sum()
    x = np.pad(images, [(0, 0), (size, size), (size, size), (0, 0)])
    x = np.stack([np.convolve(row, f, "valid") for row in x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])])
    x = x.reshape(2, x.shape[0] // 6, 3, 12).transpose(0, 3, 1, 2)
    x = np.stack([np.convolve(row, f, "valid") for row in x.transpose(0, 1, 3, 2).reshape(-1, x.shape[2])])
    expected = x.reshape(2, 12, 3, 12).transpose(0, 1, 3, 2)
    ours = blur_images(tf.constant(images, tf.float32), tf.constant(sigma), max_size=7).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_settings_stylegan3_has_no_use_for_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="model.fmap_base=64 does not apply to StyleGAN3"):
        typed_model(StyleGAN3Config, {"name": "x", "fmap_base": 64})
    with pytest.raises(ConfigError, match="model.use_noise=True"):
        typed_model(StyleGAN3Config, {"name": "x", "use_noise": True})
    with pytest.raises(ConfigError, match="model.mapping_fmaps=8 must equal"):
        typed_model(StyleGAN3Config, {"name": "x", "mapping_fmaps": 8})
    r = to_object(compose_config("train", "model=stylegan3_r")).model
    assert (r.conv_kernel, r.channel_scale, r.use_radial_filters, r.blur_sigma) == (1, 2, True, 10.0)
    assert r.channels_g() == (65536, 1024) and r.nf_d(1024) == 32
    model = tiny_cfg(tmp_path, "model.precision=mixed_bfloat16").model
    G, D = build_generator(model, 16), build_discriminator(model, 16)
    with pytest.raises(ConfigError, match="model.precision=mixed_bfloat16: StyleGAN3 trains in float32 only"):
        StyleGAN3Steps(G, D, build_generator(model, 16), model, seed=1)


def test_only_the_d_steps_fakes_move_w_avg_and_the_magnitude_emas(tmp_path):
    model = tiny_cfg(tmp_path).model
    G, D, Gs = build_generator(model, 16), build_discriminator(model, 16), build_generator(model, 16)
    steps = StyleGAN3Steps(G, D, Gs, model, seed=1)
    steps.ema_beta.assign(0.5)
    emas = lambda net: [float(v.magnitude_ema) for v in net.synthesis.layers]  # noqa: E731
    steps._g_step(tf.constant(4), 4, 0.0)  # eager: tracing would cost more than the steps
    assert emas(G) == [1.0] * 5 and not np.any(G.w_avg.numpy())
    steps._d_step(tf.random.normal([4, 16, 16, 3]), 4, 0.0)
    assert all(e != 1.0 for e in emas(G)) and np.any(G.w_avg.numpy())
    steps._update_gs(tf.constant(0.9))
    assert emas(Gs) == emas(G)
    assert steps.D_opt.beta2 == pytest.approx(0.99 ** (16 / 17)) and steps.G_opt.beta2 == 0.99


def test_style_mixing_cuts_anywhere_among_stylegan3s_style_layers(tmp_path):
    model = tiny_cfg(tmp_path, "model.num_layers=5").model  # 7 style layers at 16², where StyleGAN2 has 6
    G = build_generator(model, 16)
    rng, z = tf.random.Generator.from_seed(3), tf.random.normal([2, model.latent_size])
    cutoffs = set()
    for _ in range(40):
        w = G.train_dlatents(z, 4, rng, 1.0, 1.0).numpy()
        cutoffs.add(int(np.argmax(np.any(w != w[:, :1], axis=(0, 2)))))
    assert G.num_layers == 7 and cutoffs == set(range(1, 7))  # the original's randint(1, num_ws)


@pytest.mark.slow
def test_tiny_config_r_run_resumes_and_transfers(tmp_path, monkeypatch, caplog):
    quick = ("schedule.tick_kimg_base=0.1", "model=stylegan3_r")
    first = Trainer(tiny_cfg(tmp_path, *quick, "schedule.total_kimg=0.1", "model.blur_fade_kimg=0.05"),
                    tmp_path / "first")
    betas = []
    monkeypatch.setattr(sg3_training, "gs_beta", lambda *args: betas.append(args) or sg3_training_beta(*args))
    snapshot = first.run()
    (tick,) = ticks_of(tmp_path / "first")
    # Gs's half-life ramps up with the images shown before each step, as the original's ema_rampup 0.05
    assert betas == [(8, 10.0, 0.05, nimg) for nimg in range(0, round(tick["kimg"] * 1000), 8)]
    assert tick["resolution"] == 16 and all(math.isfinite(tick[k]) for k in ("loss/G", "loss/D", "loss/R1"))
    minibatches = float(first.steps.minibatches)
    assert minibatches == tick["kimg"] * 1000 / 8 and float(first.steps.blur_sigma) == 0.0  # faded at 0.05
    snap = load_snapshot(snapshot)
    assert snap.model.conv_kernel == 1 and snap.model.channel_scale == 2
    emas = [float(layer.magnitude_ema) for layer in first.Gs.synthesis.layers]
    assert all(e != 1.0 for e in emas)

    # resume: the checkpoint restores StyleGAN3's state (continuing is the house's loop, tested elsewhere)
    resumed = Trainer(tiny_cfg(tmp_path, *quick, "schedule.total_kimg=0.2", "resume=path",
                               f"resume.path={tmp_path / 'first' / 'checkpoints'}"), tmp_path / "second")
    assert float(resumed.steps.minibatches) == minibatches
    assert float(resumed.steps.D_opt.step) == float(first.steps.D_opt.step) > minibatches  # R1 steps too
    assert [float(layer.magnitude_ema) for layer in resumed.Gs.synthesis.layers] == emas
    assert resumed.state.nimg == tick["kimg"] * 1000

    # transfer: the composed config T adopts the snapshot's config R and starts from its weights
    with caplog.at_level(logging.INFO):
        transfer = Trainer(tiny_cfg(tmp_path, "transfer=snapshot", f"transfer.source={snapshot}"),
                           tmp_path / "transfer")
    assert first.cfg.schedule.G_smoothing_rampup == 0.05 and transfer.cfg.schedule.G_smoothing_rampup is None
    assert "schedule.G_smoothing_rampup=null: Gs starts from" in caplog.text
    assert transfer.cfg.model.use_radial_filters and transfer.cfg.model.conv_kernel == 1
    ours, theirs = weights_of(transfer.Gs), snap.subset("Gs")
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)
