"""Sampling, ranking and metrics run the networks compiled: one trace per network and batch shape, the
last batch padded, and the same images as the eager networks."""

import numpy as np
import tensorflow as tf
from conftest import tiny_model

from stylegan_exp.grid import to_uint8
from stylegan_exp.metrics import evaluate
from stylegan_exp.models.stylegan.discriminator import StyleGANDiscriminator
from stylegan_exp.models.stylegan.generator import StyleGANGenerator as Generator
from stylegan_exp.nets.compiled import compiled, padded_batches
from stylegan_exp.sample import generate, rank

MODEL = tiny_model()


def traces(net, fn) -> int:
    return compiled(net, fn).experimental_get_tracing_count()


def test_padded_batches_repeat_the_last_rows():
    chunks = list(padded_batches(np.arange(7), 3))
    assert [n for _, n in chunks] == [3, 3, 1]
    np.testing.assert_array_equal(chunks[-1][0], [6, 6, 6])


def test_generator_traces_once_for_every_batch_and_matches_eager():
    tf.random.set_seed(0)
    Gs = Generator(MODEL, 16)
    seeds = list(range(11))
    images = generate.generate(Gs, seeds, psi=0.7, cutoff=8, batch_size=4)
    generate.generate(Gs, seeds[:3], psi=0.7, cutoff=8, batch_size=4)
    assert traces(Gs, generate._generate) == 1
    z = tf.constant(generate.seed_latents(seeds, Gs.latent_size))
    eager = to_uint8(Gs(z, psi=0.7, cutoff=8, randomize_noise=False).numpy())
    assert np.abs(images.astype(int) - eager).max() <= 1

    w = generate.seed_dlatents(Gs, seeds, psi=0.5, batch_size=4)
    generate.seed_dlatents(Gs, seeds[:5], psi=0.5, batch_size=4)
    assert traces(Gs, generate._dlatents) == 1
    out = generate.synthesize(Gs, w.reshape(11, 1, *w.shape[1:]), batch_size=4)
    generate.synthesize(Gs, w[:2], batch_size=4)
    assert traces(Gs, generate._synthesize) == 1
    np.testing.assert_allclose(out[:, 0], Gs.synthesize(tf.constant(w)).numpy(), atol=1e-4)

    Gs.lod = 1.0  # a network whose lod changes traces afresh, at its new level
    assert generate.synthesize(Gs, w[:2], batch_size=4).shape == (2, 16, 16, 3)
    assert traces(Gs, generate._synthesize) == 1


def test_discriminator_and_metric_fakes_trace_once():
    tf.random.set_seed(1)
    D, Gs = StyleGANDiscriminator(MODEL, 16), Generator(MODEL, 16)
    images = np.random.default_rng(0).uniform(-1, 1, (10, 16, 16, 3)).astype(np.float32)
    scores = rank.score_images(D, images, batch_size=4)
    assert scores.shape == (10,) and traces(D, rank._scores) == 1
    np.testing.assert_allclose(scores[:8], np.concatenate([D(images[:4]), D(images[4:8])]), atol=1e-4)
    fakes = list(evaluate.fake_batches(Gs, 10, 4))
    assert [len(f) for f in fakes] == [4, 4, 2] and traces(Gs, evaluate._untruncated) == 1
