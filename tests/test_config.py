"""Hydra composition: every group composes, presets carry the original numbers, mistakes fail early."""

import subprocess
import sys
import time

import pytest
from conftest import CONF, REPO, compose_config
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from stylegan_exp.config import TrainConfig, to_object


def compose_train(*overrides: str):
    return compose_config("train", *overrides)


def test_default_composition_is_typed():
    cfg = to_object(compose_train())
    assert isinstance(cfg, TrainConfig)
    assert cfg.dataset.name == "synthetic" and cfg.schedule.name == "default"
    assert cfg.schedule.G_lrate_dict == {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}


@pytest.mark.parametrize(
    ("preset", "gpus", "base", "table"),
    [
        ("1gpu", 1, 4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
        ("2gpu", 2, 8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
        ("4gpu", 4, 16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
        ("8gpu", 8, 32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
    ],
)
def test_gpu_presets_carry_original_minibatches(preset, gpus, base, table):
    g = to_object(compose_train(f"gpus={preset}")).gpus
    assert (g.num_gpus, g.minibatch_base, g.minibatch_dict) == (gpus, base, table)


TRAIN_GROUPS = ("dataset", "gpus", "schedule", "resume", "transfer", "model", "metrics", "logger", "augment")


@pytest.mark.slow
def test_every_group_option_composes():
    for group in TRAIN_GROUPS:
        options = sorted((CONF / group).glob("*.yaml"))
        assert options, group
        for option in options:
            overrides = [f"{group}={option.stem}"]
            cfg = compose_train(*overrides)
            if missing := OmegaConf.missing_keys(cfg):
                cfg = compose_train(*overrides, *(f"{key}=/somewhere" for key in missing))
            to_object(cfg)


def test_demo_experiment_overrides_groups():
    cfg = to_object(compose_train("+experiment=demo"))
    assert (cfg.name, cfg.schedule.name, cfg.model.name, cfg.gpus.name) == ("demo", "demo", "small", "cpu")
    assert cfg.dataset.resolution == 32


def test_misspelled_key_is_named():
    with pytest.raises(ConfigCompositionException) as info:
        compose_train("schedule.no_such_key=1")
    assert "no_such_key" in str(info.value) or "no_such_key" in str(info.value.__cause__)


def test_wrong_type_is_named():
    with pytest.raises((ConfigCompositionException, ValidationError)) as info:
        compose_train("schedule.total_kimg=lots")
    text = str(info.value) + str(info.value.__cause__)
    assert "total_kimg" in text


def test_unknown_top_level_key_is_named():
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as info:
        compose_train("nmae=x")
    assert "nmae" in str(info.value) + str(info.value.__cause__)


@pytest.mark.slow
def test_train_py_rejects_typo_in_seconds(tmp_path):
    start = time.time()
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "schedule.no_such_key=1",
                           f"outputs_root={tmp_path}"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0
    assert "no_such_key" in proc.stderr
    assert time.time() - start < 30
    assert not any(tmp_path.iterdir())  # nothing was started
