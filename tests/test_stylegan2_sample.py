"""StyleGAN2's own sampling details on a tiny 16² snapshot: the inversion's noise regularization and PPL with
fresh noise (the sample.py tasks of both architectures: test_sample_tasks.py; export: test_export.py)."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import stand_in_perceptual, tiny_model

from stylegan_exp.config import InversionConfig
from stylegan_exp.models import build_generator, load_snapshot, network
from stylegan_exp.sample.invert import Inverter, noise_regularization

RES = 16


@pytest.fixture(scope="module")
def snapshot(random_snapshots) -> Path:
    """A randomly initialised 16² StyleGAN2 snapshot whose noise inputs matter (strengths are 0 at init)."""
    return random_snapshots("stylegan2")


def test_noise_regularization_is_the_projectors():
    """Σ over maps and 2× box pyramids down to 8×8 of mean(v·roll(v, 1, x))² + mean(v·roll(v, 1, y))²."""
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((1, size, size, 1)).astype(np.float32) for size in (4, 16, 32)]
    expected = 0.0
    for v in maps:
        v = v[0, :, :, 0].astype(np.float64)
        while True:
            expected += np.mean(v * np.roll(v, 1, axis=1)) ** 2 + np.mean(v * np.roll(v, 1, axis=0)) ** 2
            if v.shape[0] <= 8:
                break
            v = v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2).mean(axis=(1, 3))
    assert float(noise_regularization([tf.constant(m) for m in maps])) == pytest.approx(expected, rel=1e-5)
    smooth = tf.ones([1, 16, 16, 1])  # fully correlated "noise" costs far more than white noise
    assert float(noise_regularization([smooth])) > 100 * float(noise_regularization([tf.constant(maps[1])]))


def test_inversion_regularizes_noise_for_stylegan2_only(snapshot):
    cfg = InversionConfig(steps=1)
    Gs = network(load_snapshot(snapshot), "Gs")
    assert Inverter(Gs, None, cfg).noise_reg_weight == 1e5
    assert Inverter(Gs, None, InversionConfig(optimize_noise=False)).noise_reg_weight == 0.0
    assert Inverter(build_generator(tiny_model("stylegan"), RES), None, cfg).noise_reg_weight == 0.0


@pytest.mark.slow
def test_ppl_of_a_stylegan2_generator(snapshot):
    from stylegan_exp.config import PPLConfig
    from stylegan_exp.metrics.ppl import fresh_noise, perceptual_path_length

    G = network(load_snapshot(snapshot), "Gs")
    maps = [v for v in G.variables if v.name.startswith("noise")]
    assert len(maps) == G.num_layers - 1  # one per synthesis layer (toRGB has none)
    with fresh_noise(G) as redraw:
        redraw(np.random.RandomState(0))
    value = perceptual_path_length(G, stand_in_perceptual(), PPLConfig(num_samples=16, minibatch=16), seed=0)
    assert np.isfinite(value) and value > 0
