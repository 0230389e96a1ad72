"""mixed_float16 stays finite: norm/mbstd statistics are taken in float32 (1e-8 underflows in float16)."""

import numpy as np
import tensorflow as tf

from stylegan_exp.config import StyleGANConfig
from stylegan_exp.nets.build import build_discriminator, build_generator
from stylegan_exp.nets.layers import instance_norm, pixel_norm
from stylegan_exp.train.steps import Steps

MODEL = StyleGANConfig(
    name="tiny", fmap_base=256, fmap_decay=1.0, fmap_max=32, latent_size=32, dlatent_size=32,
    mapping_layers=2, mapping_fmaps=32, mapping_lrmul=0.01, use_noise=True,
    fused_scale_min_res=128, mbstd_group_size=4, mbstd_num_features=1,
    precision="mixed_float16",
)


def test_norms_of_constant_float16_input_are_finite():
    x = tf.ones([2, 4, 4, 3], tf.float16)
    assert instance_norm(x).dtype == tf.float16
    assert np.isfinite(instance_norm(x).numpy()).all()
    assert np.isfinite(pixel_norm(tf.zeros([2, 8], tf.float16)).numpy()).all()


def test_mixed_float16_training_steps_are_finite():
    G, D, Gs = build_generator(MODEL, 16), build_discriminator(MODEL, 16), build_generator(MODEL, 16)
    steps = Steps(G, D, Gs, MODEL, seed=0)
    for _ in range(3):
        out = steps.d_step(tf.random.uniform([8, 16, 16, 3], -1, 1), 4, tf.constant(0.0))
        out.update(steps.g_step(tf.constant(8), 4, tf.constant(0.0)))
        assert all(np.isfinite(float(v)) for v in out.values()), out
    variables = G.trainable_variables + D.trainable_variables
    assert all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables)
    assert all(v.dtype == tf.float32 for v in variables)
