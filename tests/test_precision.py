"""mixed_float16 stays finite: norm/mbstd statistics are taken in float32 (1e-8 underflows in float16)."""

import numpy as np
import pytest
import tensorflow as tf

from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.nets.layers import instance_norm, pixel_norm

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


@pytest.mark.slow
def test_mixed_float16_training_steps_are_finite():
    G, D, Gs = build_generator(MODEL, 16), build_discriminator(MODEL, 16), build_generator(MODEL, 16)
    steps = StyleGANSteps(G, D, Gs, MODEL, seed=0)
    for _ in range(3):
        out = steps.d_step(tf.random.uniform([8, 16, 16, 3], -1, 1), 4, tf.constant(0.0))
        out.update(steps.g_step(tf.constant(8), 4, tf.constant(0.0)))
        assert all(np.isfinite(float(v)) for v in out.values()), out
    variables = G.trainable_variables + D.trainable_variables
    assert all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in variables)
    assert all(v.dtype == tf.float32 for v in variables)


def test_cpu_bf16_detection_reads_the_flags():
    from stylegan_exp.steps.precision import cpu_has_bf16

    assert cpu_has_bf16("processor : 0\nflags : fpu avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_bf16("Features : fp asimd bf16 i8mm\n")  # aarch64
    assert not cpu_has_bf16("flags : fpu avx2 avx512f\nmodel name : bf16 marketing name\n")
    assert not cpu_has_bf16("")


def test_auto_precision_is_a_concrete_one_and_logged(caplog, monkeypatch):
    from stylegan_exp.config import Precision
    from stylegan_exp.steps import precision

    cases = (("flags : avx512_bf16", Precision.mixed_bfloat16), ("flags : avx2", Precision.float32))
    for cpuinfo, expected in cases:
        monkeypatch.setattr(precision, "_read_cpuinfo", lambda text=cpuinfo: text)
        with caplog.at_level("INFO", logger=precision.__name__):
            assert precision.resolve_precision("auto") == expected  # this test machine has no GPU
        assert f"model.precision=auto: {expected}" in caplog.text
    assert precision.resolve_precision("float32") == Precision.float32


def test_composed_runs_default_to_auto_precision():
    from conftest import compose_config

    assert compose_config("train").model.precision == "auto"
    assert compose_config("train", "model=small").model.precision == "auto"
