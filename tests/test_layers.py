"""Layer and network facts from REFERENCE.md, checked numerically against NumPy."""

import math

import numpy as np
import pytest
import tensorflow as tf

from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan.discriminator import StyleGANDiscriminator
from stylegan_exp.nets.generator import Generator, num_style_layers
from stylegan_exp.nets.layers import Conv2D, Dense, blur2d, instance_norm, minibatch_stddev, pixel_norm, runtime_scale, upscale2d

SMALL = StyleGANConfig(name="small", fmap_base=256, fmap_max=32, latent_size=16, dlatent_size=16,
                       mapping_layers=2, mapping_fmaps=16)


def small_g() -> Generator:
    return Generator(SMALL, 32)


def test_equalized_lr_runtime_scale_and_init():
    assert runtime_scale(512) == pytest.approx(math.sqrt(2) / math.sqrt(512))
    assert runtime_scale(512, gain=1.0, lrmul=0.01) == pytest.approx(0.01 / math.sqrt(512))
    tf.random.set_seed(0)
    layer = Dense(256, 512, lrmul=0.01)
    # Stored weights are N(0, 1/lrmul); the effective weights are He-scaled.
    assert float(tf.math.reduce_std(layer.weight)) == pytest.approx(100.0, rel=0.02)
    effective = layer.weight * layer.scale
    assert float(tf.math.reduce_std(effective)) == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    layer.bias.assign(tf.ones([512]))
    y = layer(tf.zeros([1, 256]))
    np.testing.assert_allclose(y.numpy(), 0.01)  # bias multiplied by lrmul


def test_pixel_norm_unit_mean_square():
    x = tf.random.normal([4, 7]) * 5
    y = pixel_norm(x).numpy()
    np.testing.assert_allclose((y**2).mean(axis=1), 1.0, rtol=1e-5)


def test_instance_norm_per_sample_channel():
    x = tf.random.normal([2, 8, 8, 3]) * 3 + 2
    y = instance_norm(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), 1.0, rtol=1e-4)


def test_minibatch_stddev_matches_numpy_reference():
    x = np.random.RandomState(0).randn(8, 4, 4, 6).astype(np.float32)
    y = minibatch_stddev(tf.constant(x), group_size=4, num_new_features=1).numpy()
    assert y.shape == (8, 4, 4, 7)
    np.testing.assert_array_equal(y[..., :6], x)
    groups = x.reshape(4, 2, 4, 4, 6)  # sample i is in column i % 2
    std = np.sqrt(groups.var(axis=0) + 1e-8).mean(axis=(1, 2, 3))
    for i in range(8):
        np.testing.assert_allclose(y[i, :, :, 6], std[i % 2], rtol=1e-5)


def test_blur_preserves_constant():
    x = tf.ones([1, 6, 6, 2])
    np.testing.assert_allclose(blur2d(x).numpy()[:, 1:-1, 1:-1], 1.0, rtol=1e-6)


def test_fused_scaling_convs_equal_resample_plus_conv():
    """Fused up = nearest upscale + conv with the spatially flipped kernel (conv2d_transpose's orientation,
    as the original); fused down = conv + 2×2 box filter."""
    tf.random.set_seed(1)
    up, plain = Conv2D(4, 5, 3, scaling="up"), Conv2D(4, 5, 3)
    plain.weight.assign(up.weight[::-1, ::-1])
    x = tf.random.normal([2, 5, 5, 4])
    np.testing.assert_allclose(up(x).numpy(), plain(upscale2d(x)).numpy(), atol=1e-4)
    down = Conv2D(4, 5, 3, scaling="down")
    plain.weight.assign(down.weight)
    x = tf.random.normal([2, 8, 8, 4])
    expected = tf.nn.avg_pool2d(plain(x), 2, 2, "VALID")
    np.testing.assert_allclose(down(x).numpy(), expected.numpy(), atol=1e-4)



def test_upscale_first_conv_equals_nearest_upscale_then_conv():
    """The original's G below 128² upscales, then convolves; one transposed convolution computes the same."""
    tf.random.set_seed(2)
    up, plain = Conv2D(4, 5, 3, scaling="up", upscale_first=True), Conv2D(4, 5, 3)
    plain.weight.assign(up.weight)
    x = tf.random.normal([2, 6, 6, 4])
    np.testing.assert_allclose(up(x).numpy(), plain(upscale2d(x)).numpy(), atol=1e-4)

def test_truncation_formula_and_cutoff():
    G = small_g()
    G.w_avg.assign(tf.fill([16], 2.0))
    w = tf.random.normal([3, G.num_layers, 16])
    t = G.truncate(w, psi=0.7, cutoff=4).numpy()
    np.testing.assert_allclose(t[:, :4], 2.0 + 0.7 * (w.numpy()[:, :4] - 2.0), rtol=1e-6)
    np.testing.assert_array_equal(t[:, 4:], w.numpy()[:, 4:])
    z = tf.random.normal([3, 16])
    images = G(z, psi=0.0, cutoff=None, randomize_noise=False).numpy()
    np.testing.assert_allclose(images[0], images[1], atol=1e-5)  # psi=0: every z gives w_avg


def test_w_avg_tracking_and_style_mixing():
    G = small_g()
    rng = tf.random.Generator.from_seed(3)
    z = tf.random.normal([64, 16])
    w = G.train_dlatents(z, 5, rng, mixing_prob=0.0, w_avg_beta=0.995).numpy()
    expected = 0.005 * G.mapping(z).numpy().mean(axis=0)
    np.testing.assert_allclose(G.w_avg.numpy(), expected, rtol=1e-4, atol=1e-7)
    assert num_style_layers(5) == G.num_layers == 8
    np.testing.assert_allclose(w[:, 0], w[:, -1])
    cut_seen = set()
    for _ in range(40):
        w = G.train_dlatents(z, 4, rng, mixing_prob=1.0, w_avg_beta=0.995).numpy()
        same = np.all(np.isclose(w[0], w[0, :1]), axis=1)
        cut_seen.add(int(np.argmin(same)) if not same.all() else num_style_layers(4))
    # Cutoff uniform in [1, cur_layers) where level 4 uses 6 style layers.
    assert cut_seen <= set(range(1, 6)) and len(cut_seen) >= 3


def test_generator_fade_blends_with_lower_level():
    G = small_g()
    z = tf.random.normal([2, 16])
    w = G.map(z)
    low = G.synthesis(w, 3, 0.0, randomize_noise=False)
    faded = G.synthesis(w, 4, 1.0, randomize_noise=False)
    np.testing.assert_allclose(faded.numpy(), upscale2d(low).numpy(), atol=1e-5)
    assert G.synthesis(w, 4, 0.3, randomize_noise=False).shape == (2, 16, 16, 3)


def test_discriminator_fade_uses_downscaled_path_and_traces_per_level():
    D = Discriminator(SMALL, 32)
    images = tf.random.normal([4, 16, 16, 3])
    full = D(images, 4, 1.0)
    lower = D(tf.nn.avg_pool2d(images, 2, 2, "VALID"), 3, 0.0)
    np.testing.assert_allclose(full.numpy(), lower.numpy(), rtol=1e-4, atol=1e-5)
    # Only the layers up to the traced level exist in the graph: 32×32 weights get no gradient at 8×8.
    with tf.GradientTape() as tape:
        score = tf.reduce_sum(D(tf.random.normal([4, 8, 8, 3]), 3, 0.5))
    grads = dict(zip([v.ref() for v in D.trainable_variables], tape.gradient(score, D.trainable_variables),
                     strict=True))
    assert grads[D.blocks[3].conv0.weight.ref()] is None
    assert grads[D.blocks[1].conv0.weight.ref()] is not None


def test_nf_matches_formula():
    model = StyleGANConfig(name="paper")
    assert [model.nf(s) for s in range(10)] == [512, 512, 512, 512, 512, 256, 128, 64, 32, 16]
