"""Augmentation and Freeze-D in training: p is logged, checkpointed and resumed, augmentation never reaches
generated images, frozen blocks keep their weights (split steps with augmentation: test_accumulate.py)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config, ticks_of
from hydra.errors import ConfigCompositionException
from split_steps import build_steps

from stylegan_exp.config import ConfigError, to_object
from stylegan_exp.data.images import load_image
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.tracking import offline_history
from stylegan_exp.train.loop import Trainer


def test_freeze_d_keeps_the_highest_resolution_blocks(caplog):
    steps = build_steps()
    G, D, Gs = (build_steps().__getattribute__(n) for n in ("G", "D", "Gs"))
    with caplog.at_level(logging.INFO, logger="stylegan_exp.steps.base"):
        frozen = StyleGANSteps(G, D, Gs, steps.model, seed=7, freeze_d=1)
    assert "Freeze-D: D's 8×8 blocks keep their weights" in caplog.text
    reals = tf.random.stateless_uniform([8, 8, 8, 3], [1, 2], -1.0, 1.0)
    for s in (steps, frozen):
        s.D_before = [v.numpy() for v in s.D.trainable_variables]
        s.d_step(reals, 3, tf.constant(0.0))

    def moved(s, block) -> list[bool]:
        ids = {id(v) for v in block.trainable_variables}
        return [not np.array_equal(b, v.numpy())
                for b, v in zip(s.D_before, s.D.trainable_variables, strict=True) if id(v) in ids]

    assert all(moved(steps, steps.D.blocks[1])) and not any(moved(frozen, frozen.D.blocks[1]))
    assert any(moved(frozen, frozen.D.blocks[0]))  # (its fromRGB only fades in: no gradient at fade 0)
    with pytest.raises(ConfigError, match="transfer.freeze_d=2: D at 8² has 2 blocks"):
        StyleGANSteps(steps.G, steps.D, steps.Gs, steps.model, seed=7, freeze_d=2)


@pytest.mark.slow
def test_augmentation_never_reaches_generated_images(tiny_cfg, tmp_path):
    """Gs, the fakes grids and snapshots are the generator's alone: the weights of an augmented run, resumed
    with and without augmentation, draw the very same pixels."""
    fixed = ("augment=fixed", "augment.p=1")
    augmented = Trainer(tiny_cfg(*fixed, "schedule.total_kimg=0.1"), tmp_path / "augmented")
    snapshot = augmented.run()
    resume = ("resume=path", f"resume.path={tmp_path / 'augmented' / 'checkpoints'}")
    again = Trainer(tiny_cfg(*fixed, *resume), tmp_path / "again")
    plain = Trainer(tiny_cfg(*resume), tmp_path / "plain")  # a checkpoint's p is not needed
    level, fade = again._level_and_fade()
    np.testing.assert_array_equal(load_image(plain.save_fakes(level, fade)),
                                  load_image(again.save_fakes(level, fade)))
    z = tf.random.stateless_normal([8, augmented.Gs.latent_size], [4, 2])
    images = augmented.Gs(z, level, fade, randomize_noise=False).numpy()
    for generator in (again.Gs, plain.Gs, network(load_snapshot(snapshot), "Gs")):
        np.testing.assert_array_equal(generator(z, level, fade, randomize_noise=False).numpy(), images)


@pytest.mark.slow
def test_p_is_logged_checkpointed_and_resumed(tiny_cfg, tmp_path, caplog):
    """ADA's p rises (target -1: every r_t is above it) by 4·16 / 2000 every 4 D steps; a resumed run
    continues from the checkpoint's p instead of restarting at 0."""
    ada = ("augment=ada", "augment.target=-1", "augment.ada_kimg=2")
    runs = tmp_path / "outputs" / "tiny"
    cfg = tiny_cfg(*ada, "schedule.total_kimg=0.5", "logger=wandb_offline")
    first = Trainer(cfg, runs / "first")
    with caplog.at_level(logging.INFO, logger="stylegan_exp.train.loop"):
        first.run()
    assert "  r_t " in caplog.text and "  augment p " in caplog.text  # the tick line
    ticks = ticks_of(runs / "first")
    assert all("augment/p" in t and -1 <= t["augment/rt"] <= 1 for t in ticks)
    p = [t["augment/p"] for t in ticks]
    assert p == sorted(p) and p[-1] == pytest.approx(float(first.steps.augment.p)) and p[-1] > 0.1
    wandb_ticks = [h for h in offline_history(runs / "first") if "tick" in h]
    assert [h["augment/p"] for h in wandb_ticks] == p

    resumed = Trainer(tiny_cfg(*ada, "schedule.total_kimg=0.8", "resume=latest"), runs / "second")
    assert float(resumed.steps.augment.p) == pytest.approx(p[-1])
    resumed.run()
    later = [t["augment/p"] for t in ticks_of(runs / "second")]
    assert later[0] > p[-1] and later == sorted(later)


@pytest.mark.parametrize("preset", ["anime_to_holo", "stylegan2_anime_to_holo"])
def test_transfer_to_a_small_set_augments_and_freezes_by_default(preset: str) -> None:
    cfg = to_object(compose_config("train", f"transfer={preset}"))
    assert (cfg.augment.kind, cfg.transfer.freeze_d) == ("ada", 2)
    plain = to_object(compose_config("train", f"transfer={preset}", "augment=none", "transfer.freeze_d=0"))
    assert (plain.augment.kind, plain.transfer.freeze_d) == ("none", 0)
    assert to_object(compose_config("train")).augment.kind == "none"


def test_unknown_transforms_fail_at_composition():
    for overrides in (["augment=ada", "augment.pipeline=[xflip,rotate45]"],
                      ["augment=diffaugment", "augment.policy=[colour]"]):
        with pytest.raises(ConfigCompositionException) as info:
            compose_config("train", *overrides)
        assert overrides[1].split("=")[0] in str(info.value) and overrides[1].split("=")[1] in str(info.value)

