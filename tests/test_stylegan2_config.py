"""model=stylegan2 composes with the other groups: config F defaults, config E, the demo, transfer presets,
and typed errors for its own keys."""

import pytest
from conftest import compose_config
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from stylegan_exp.config import to_object
from stylegan_exp.models import model_config
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology


def compose_train(*overrides: str):
    return to_object(compose_config("train", *overrides))


def test_config_f_defaults_are_the_originals():
    m = compose_train("model=stylegan2").model
    assert isinstance(m, StyleGAN2Config) and m.name == "stylegan2"
    assert (m.fmap_base, m.fmap_decay, m.fmap_min, m.fmap_max) == (16384, 1.0, 1, 512)
    assert (m.g_architecture, m.d_architecture) == (Topology.skip, Topology.resnet)
    assert m.resample_kernel == [1, 3, 3, 1] and (m.mbstd_group_size, m.mbstd_num_features) == (4, 1)
    assert (m.r1_gamma, m.d_reg_interval, m.pl_weight, m.pl_decay, m.pl_batch_shrink, m.g_reg_interval) == (
        10.0, 16, 2.0, 0.01, 2, 4)
    assert (m.style_mixing_prob, m.truncation_psi, m.truncation_cutoff) == (0.9, 0.5, None)
    assert [m.nf(s) for s in range(10)] == [512, 512, 512, 512, 512, 512, 256, 128, 64, 32]
    assert StyleGAN2Config.PROGRESSIVE is False and StyleGANConfig.PROGRESSIVE is True


def test_config_e_small_and_demo():
    e = compose_train("model=stylegan2_e").model
    assert (e.fmap_base, e.r1_gamma, e.g_architecture) == (8192, 100.0, Topology.skip)
    demo = compose_train("+experiment=demo_stylegan2")
    assert (demo.name, demo.model.name, demo.schedule.name, demo.gpus.name) == (
        "demo_stylegan2", "stylegan2_small", "demo", "cpu")
    assert demo.dataset.resolution == 32 and isinstance(demo.model, StyleGAN2Config)
    schedule = compose_train("model=stylegan2", "schedule=stylegan2").schedule
    assert (schedule.G_lrate_base, schedule.G_lrate_dict, schedule.tick_kimg_dict[512]) == (0.002, {}, 6)


@pytest.mark.parametrize("preset", ["stylegan2_anime_to_holo", "stylegan2_anime_to_ffhq"])
def test_stylegan2_transfer_presets(preset):
    cfg = compose_train(f"transfer={preset}")
    assert isinstance(cfg.model, StyleGAN2Config) and cfg.transfer.source.endswith(".pkl")
    assert cfg.schedule.name == "stylegan2"


def test_bad_stylegan2_keys_are_named():
    with pytest.raises((ConfigCompositionException, ValidationError)) as info:
        compose_train("model=stylegan2", "model.g_architecture=resnext")
    assert "g_architecture" in str(info.value) + str(info.value.__cause__)
    with pytest.raises(ConfigCompositionException) as info:
        compose_train("model=stylegan2", "model.pl_wieght=3")
    assert "pl_wieght" in str(info.value) + str(info.value.__cause__)
    with pytest.raises(ConfigCompositionException):  # a StyleGAN-only key
        compose_train("model=stylegan2", "model.fused_scale_min_res=64")


def test_snapshot_model_round_trip():
    from dataclasses import asdict

    m = StyleGAN2Config(name="x", g_architecture=Topology.resnet, resample_kernel=[1, 1])
    assert model_config("stylegan2", asdict(m)) == m
