"""train.py dataset.aspect=1:2: StyleGAN (growing) and StyleGAN2 train, resume, sample and export portraits;
a square snapshot transfers its shared layers into a portrait run, naming what starts fresh."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, compose_config, run_task, size_of, ticks_of

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.config import ConfigError
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.synthetic import ensure_synthetic_dataset
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot, network
from stylegan_exp.nets.weights import weights_of
from stylegan_exp.run import training_config
from stylegan_exp.train.loop import Trainer

PORTRAIT = parse_aspect("1:2")


@pytest.fixture(scope="module")
def portraits(tmp_path_factory) -> Path:
    """The tiny experiment's 128 synthetic faces drawn as 16×32 portraits."""
    path = tmp_path_factory.mktemp("aspect") / "synthetic-16-1x2-n128-seed0"
    return ensure_synthetic_dataset(path, count=128, resolution=16, seed=0, aspect=PORTRAIT)


def _train(tmp_path: Path, portraits: Path, *overrides: str, arch: str = "stylegan") -> Trainer:
    """training_config as train.py composes it (resume reads the saved config.yaml), then the run."""
    args = [*TINY, *(["model=stylegan2"] if arch == "stylegan2" else []), "dataset.aspect=1:2",
            f"dataset.path={portraits}", "logger=none", f"outputs_root={tmp_path / 'outputs'}",
            "model.precision=float32", *overrides]
    typed, target = training_config(compose_config("train", *args), overrides=args)
    runs = tmp_path / "outputs" / "tiny"
    run_dir = runs / f"run{len(list(runs.glob('run*')))}"
    trainer = Trainer(typed, run_dir, resume_from=target)
    trainer.run()
    return trainer


@pytest.mark.slow
def test_stylegan_grows_resumes_samples_and_exports_portraits(tmp_path, portraits):
    first = _train(tmp_path, portraits, "schedule.total_kimg=0.5", "run.checkpoint_kimg=0.25")
    assert first.run_parts.data.aspect == PORTRAIT
    assert size_of(first.run_dir / "reals.png") == (4 * 16, 2 * 32)
    assert size_of(first.run_dir / "fakes000000.png") == (4 * 16, 2 * 32)  # lower levels upscaled to 16×32
    assert {t["resolution"] for t in ticks_of(first.run_dir)} == {8, 16}
    snap = load_snapshot(sorted(first.run_dir.glob("network-snapshot-*.npz"))[-1])
    assert (snap.aspect, snap.resolution) == ("1:2", 16)

    resumed = _train(tmp_path, portraits, "resume=latest", "schedule.total_kimg=0.75")
    assert resumed.run_parts.resumed and resumed.state.kimg >= 0.75
    assert resumed.cfg.dataset.aspect == "1:2"

    last = sorted(resumed.run_dir.glob("network-snapshot-*.npz"))[-1]
    (image, *_) = run_task(last, tmp_path / "random", "task=random", "seeds=[1,2]")
    assert size_of(image) == (16, 32)
    outputs = run_task(last, tmp_path / "export", "task=export", "task.formats=[saved_model]",
                       "task.verify_seeds=[0]")
    described = json.loads(next(p for p in outputs if p.name == "export.json").read_text())
    assert (described["aspect"], described["width"], described["height"]) == ("1:2", 16, 32)
    assert described["files"]["saved_model"]["verified"]["z"]["max_abs_float_error"] == 0


@pytest.mark.slow
def test_stylegan2_trains_portraits(tmp_path, portraits):
    trainer = _train(tmp_path, portraits, "schedule.total_kimg=0.1", arch="stylegan2")
    snap = load_snapshot(sorted(trainer.run_dir.glob("network-snapshot-*.npz"))[-1])
    assert (snap.model.ARCH, snap.aspect) == ("stylegan2", "1:2")
    Gs = network(snap, "Gs")
    assert Gs(np.zeros([2, Gs.latent_size], np.float32)).shape == (2, 32, 16, 3)
    assert size_of(trainer.run_dir / "fakes000000.png") == (4 * 16, 2 * 32)


@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_only_the_ends_differ_from_the_square_networks(arch):
    from conftest import tiny_model

    model = tiny_model(arch)
    for build in (build_generator, build_discriminator):
        square = {k: v.shape for k, v in weights_of(build(model, 16)).items()}
        portrait = {k: v.shape for k, v in weights_of(build(model, 16, 3, aspect=PORTRAIT)).items()}
        assert square.keys() == portrait.keys()
        differ = {k for k in square if square[k] != portrait[k]}
        trained = {k for k in differ if not k.endswith("noise")}
        assert trained == ({"synthesis/blocks/0/const"} if build is build_generator
                           else {"blocks/0/dense0/weight"})
        assert portrait.get("synthesis/blocks/0/const", (1, 8, 4))[1:3] == (8, 4)


def test_transfer_from_a_square_snapshot_keeps_shared_layers(tmp_path, portraits, random_snapshots, caplog):
    source = random_snapshots()
    cfg, _ = training_config(compose_config(
        "train", *TINY, "dataset.aspect=1:2", f"dataset.path={portraits}", "logger=none",
        "transfer=snapshot", f"transfer.source={source}", "model.precision=float32"))
    with caplog.at_level(logging.INFO, logger="stylegan_exp"):
        trainer = Trainer(cfg, tmp_path / "run")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("transfer to 1:2")]
    assert any("G starts synthesis/blocks/0/const and 6 fixed noise maps fresh" in line for line in lines)
    assert any("D starts blocks/0/dense0/weight fresh" in line for line in lines)
    snap = load_snapshot(source)
    for name, array in snap.subset("Gs").items():
        ours = weights_of(trainer.Gs)[name]
        if ours.shape == array.shape:
            np.testing.assert_array_equal(ours, array)


def test_a_portrait_snapshot_does_not_continue_into_squares(tmp_path, portraits, random_snapshots,
                                                            tiny_dataset):
    model = network(load_snapshot(random_snapshots()), "G").model
    path = tmp_path / "portrait.npz"
    from stylegan_exp.models import save_snapshot

    nets = {"G": build_generator(model, 16, 3, aspect=PORTRAIT),
            "D": build_discriminator(model, 16, 3, aspect=PORTRAIT)}
    save_snapshot(path, {**nets, "Gs": nets["G"]}, model=model, resolution=16, num_channels=3, kimg=0.0,
                  aspect=PORTRAIT)
    cfg, _ = training_config(compose_config("train", *TINY, f"dataset.path={tiny_dataset}", "logger=none",
                                            "transfer=snapshot", f"transfer.source={path}"))
    with pytest.raises(ConfigError, match="holds 1:2 networks but dataset .* is 1:1: only a square"):
        Trainer(cfg, tmp_path / "run")


def test_dataset_of_another_aspect_is_one_line(tmp_path, portraits):
    cfg, _ = training_config(compose_config("train", *TINY, "dataset=folder", f"dataset.path={portraits}",
                                            "logger=none"))
    with pytest.raises(ConfigError, match=r"dataset.aspect=1:1 but .* holds 1:2 images .*: set "
                                          r"dataset.aspect=1:2"):
        Trainer(cfg, tmp_path / "run")
    cfg, _ = training_config(compose_config("train", *TINY, f"dataset.path={portraits}", "logger=none"))
    with pytest.raises(DatasetError, match=r"was made with aspect='1:2' \(requested '1:1'\)"):
        Trainer(cfg, tmp_path / "run2")


@pytest.mark.parametrize("text", ["2:1", "1:4", "4:1"])
def test_every_supported_aspect_builds_and_runs_at_every_level(text):
    from conftest import tiny_model

    aspect = parse_aspect(text)
    z = np.random.RandomState(0).randn(4, 16).astype(np.float32)
    for arch, levels in (("stylegan", (2, 3, 4)), ("stylegan2", (4,))):
        G = build_generator(tiny_model(arch), 16, 3, aspect=aspect)
        D = build_discriminator(tiny_model(arch), 16, 3, aspect=aspect)
        for level in levels:
            images = G(z, level, 0.5 if level > 2 else 0.0)
            assert images.shape == (4, *aspect.shape(2**level), 3)
            assert D(images, level, 0.5 if level > 2 else 0.0).shape == (4,)
