"""Perceptual path length: the interpolations, crop and trimming against references, a linear generator with a
known answer, and a tiny StyleGAN generator with a small stand-in perceptual network."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import stand_in_perceptual, tiny_model

from stylegan_exp.config import PPLConfig
from stylegan_exp.metrics.ppl import (
    face_region,
    fresh_noise,
    lpips_distance,
    path_samples,
    perceptual_path_length,
    slerp,
    trimmed_mean,
)
from stylegan_exp.models import build_generator


def test_slerp_walks_the_great_circle_at_constant_speed() -> None:
    rng = np.random.RandomState(0)
    a, b = tf.constant(rng.randn(4, 6), tf.float32), tf.constant(rng.randn(4, 6), tf.float32)
    ua, ub = (a / tf.norm(a, axis=1, keepdims=True)).numpy(), (b / tf.norm(b, axis=1, keepdims=True)).numpy()
    np.testing.assert_allclose(slerp(a, b, tf.zeros([4, 1])), ua, atol=1e-6)
    np.testing.assert_allclose(slerp(a, b, tf.ones([4, 1])), ub, atol=1e-5)
    angle = np.arccos(np.sum(ua * ub, axis=1))
    for t in (0.25, 0.6):
        p = slerp(a, b, tf.fill([4, 1], t)).numpy()
        np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(np.arccos(np.clip(np.sum(ua * p, axis=1), -1, 1)), t * angle, atol=1e-3)


def test_face_region_crops_like_the_original_and_box_filters_to_256() -> None:
    x = tf.reshape(tf.range(2 * 64 * 64 * 3, dtype=tf.float32), [2, 64, 64, 3])
    np.testing.assert_array_equal(face_region(x, crop=True), x[:, 24:56, 16:48])
    assert face_region(x, crop=False) is x
    big = tf.random.uniform([1, 1024, 1024, 3])
    cropped = face_region(big, crop=True)  # 512² region → 2×2 box
    np.testing.assert_allclose(cropped, tf.nn.avg_pool2d(big[:, 384:896, 256:768], 2, 2, "VALID"), rtol=1e-5)
    np.testing.assert_allclose(face_region(big, crop=False), tf.nn.avg_pool2d(big, 4, 4, "VALID"), rtol=1e-5)


def test_trimmed_mean_drops_what_lies_outside_the_1st_and_99th_percentiles() -> None:
    samples = np.random.RandomState(0).permutation(1000).astype(np.float64)
    # 1st percentile, 'lower': sorted[9]; 99th, 'higher': sorted[990]; both kept.
    assert trimmed_mean(samples) == pytest.approx(np.mean(np.arange(9, 991)))
    samples[samples < 9] = -1e9
    samples[samples > 990] = 1e9
    assert trimmed_mean(samples) == pytest.approx(np.mean(np.arange(9, 991)))
    same = np.full(50, 3.0)
    assert trimmed_mean(same) == 3.0


def test_lpips_distance_follows_its_formula() -> None:
    rng = np.random.RandomState(1)
    weights = [rng.randn(3, 4).astype(np.float32), rng.randn(3, 2).astype(np.float32)]

    def taps(x):
        return [tf.nn.relu(x @ weights[0]), tf.nn.relu(x[:, ::2, ::2] @ weights[1])]

    a, b = (tf.constant(rng.uniform(0, 255, (3, 8, 8, 3)), tf.float32) for _ in range(2))
    got = lpips_distance(taps)(a, b).numpy()
    expected = 0.0
    for f0, f1 in zip(taps(a), taps(b), strict=True):
        n0 = f0.numpy() / (np.linalg.norm(f0.numpy(), axis=-1, keepdims=True) + 1e-10)
        n1 = f1.numpy() / (np.linalg.norm(f1.numpy(), axis=-1, keepdims=True) + 1e-10)
        expected = expected + np.mean(np.sum((n0 - n1) ** 2, axis=-1), axis=(1, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert np.all(lpips_distance(taps)(a, a).numpy() == 0)


def test_path_samples_of_a_linear_generator_have_the_known_value() -> None:
    """G(w) = w A, distance = sum of squared pixel differences: each W-space end sample is |(w1 − w0) A|²
    (× 127.5², the image scale), whatever ε."""
    rng = np.random.RandomState(2)
    A = rng.randn(4, 2 * 2 * 3).astype(np.float32) * 0.1

    def synth(w):
        return tf.reshape(w[:, 0] @ A, [-1, 2, 2, 3])

    def mapping(z):
        return tf.tile(z[:, None], [1, 3, 1])

    def distance(a, b):
        return tf.reduce_sum(tf.square(a - b), axis=[1, 2, 3])

    cfg = PPLConfig(num_samples=25, minibatch=10, crop=False)
    samples = path_samples(mapping, synth, distance, 4, cfg, seed=7)
    z = np.random.RandomState(7)
    expected = []
    for n in (10, 10, 5):
        pairs = z.randn(2 * n, 4).astype(np.float32)
        expected.append(np.sum(((pairs[1::2] - pairs[0::2]) @ A * 127.5) ** 2, axis=1))
    np.testing.assert_allclose(samples, np.concatenate(expected), rtol=2e-2)
    cfg.epsilon = 1e-2
    np.testing.assert_allclose(path_samples(mapping, synth, distance, 4, cfg, seed=7), samples, rtol=2e-2)


def tiny_generator():
    tf.random.set_seed(0)
    G = build_generator(tiny_model(), 32, 3)
    for v in G.trainable_variables:  # noise strengths start at 0: give the noise a say
        if v.name.startswith("weight") and v.shape.rank == 1:
            v.assign(tf.fill(v.shape, 0.3))
    return G


@pytest.mark.slow
def test_ppl_of_a_tiny_generator_is_repeatable_and_leaves_its_noise_alone() -> None:
    G, distance = tiny_generator(), stand_in_perceptual()
    noise = [v.numpy() for v in G.variables if v.name.startswith("noise")]
    cfg = PPLConfig(num_samples=48, minibatch=16)
    first = perceptual_path_length(G, distance, cfg, seed=0)
    assert np.isfinite(first) and first > 0
    assert perceptual_path_length(G, distance, cfg, seed=0) == first
    assert perceptual_path_length(G, distance, cfg, seed=1) != first
    after = [v.numpy() for v in G.variables if v.name.startswith("noise")]
    assert all(np.array_equal(a, b) for a, b in zip(noise, after, strict=True))
    for space, sampling in (("z", "end"), ("w", "full"), ("z", "full")):
        value = perceptual_path_length(G, distance, PPLConfig(num_samples=16, minibatch=16, space=space,
                                                              sampling=sampling), seed=0)
        assert np.isfinite(value) and value > 0


def test_fresh_noise_redraws_every_map_for_the_whole_batch_then_restores_them() -> None:
    G = tiny_generator()
    maps = [v for v in G.variables if v.name.startswith("noise")]
    assert len(maps) == 2 * 4  # two layers per block, 4² … 32²
    before = [v.numpy() for v in maps]
    with fresh_noise(G) as redraw:
        redraw(np.random.RandomState(0))
        assert all(v.shape[0] == 1 and not np.array_equal(b, v.numpy())
                   for b, v in zip(before, maps, strict=True))
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, maps, strict=True))


def test_ppl_is_zero_when_the_mapping_ignores_z() -> None:
    G = tiny_generator()
    for v in G.mapping.dense[-1].variables:
        v.assign(tf.zeros_like(v))
    distance = stand_in_perceptual()
    for space in ("w", "z"):
        assert perceptual_path_length(G, distance, PPLConfig(num_samples=8, minibatch=8, space=space), 0) == 0
