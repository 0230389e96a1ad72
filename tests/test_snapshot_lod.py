"""A snapshot is the same network everywhere: transfer and resume adopt its architecture (non-default
shape-free settings included), and a snapshot saved while growing samples and continues at its lod."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, compose_config
from omegaconf import OmegaConf
from original_stylegan import MODELS, ref_g_style, write_pkl
from PIL import Image

from stylegan_exp.config import ConfigError, to_object
from stylegan_exp.data.writer import pack_arrays
from stylegan_exp.grid import make_grid, to_uint8
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot, network, save_snapshot
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.nets.layers import upscale2d
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.run import start_sampling
from stylegan_exp.sample.generate import seed_latents
from stylegan_exp.train.loop import Trainer

# Every shape-free setting away from its default: fused up/down-scaling everywhere, another mapping lrmul,
# fmap decay and mbstd group; the tiny experiment's model (what a transfer run composes) has the defaults.
ODD = StyleGANConfig(name="odd", fmap_base=128, fmap_decay=0.7, fmap_max=16, latent_size=16, dlatent_size=16,
                     mapping_layers=2, mapping_fmaps=16, mapping_lrmul=0.1, fused_scale_min_res=8,
                     mbstd_group_size=2)
ODD_LOD = 1.4  # 32² networks saved while 16² fades in over 8²


@pytest.fixture(scope="module")
def odd_snapshot(tmp_path_factory) -> Path:
    """A 32² snapshot of ODD networks with lively weights (noise and biases matter), saved at lod 1.4."""
    tf.random.set_seed(5)
    G, D = build_generator(ODD, 32), build_discriminator(ODD, 32)
    rng = np.random.RandomState(1)
    for name, var in variables_by_path(G).items():
        if name.endswith(("noise/weight", "bias")):
            var.assign(rng.randn(*var.shape).astype(np.float32) * 0.3)
    G.w_avg.assign(rng.randn(*G.w_avg.shape).astype(np.float32) * 0.2)
    path = tmp_path_factory.mktemp("odd") / "network-snapshot-000003.npz"
    return save_snapshot(path, {"G": G, "D": D, "Gs": G}, model=ODD, resolution=32, num_channels=3, kimg=3.0,
                         lod=ODD_LOD)


def as_trained(path: Path, z: np.ndarray, psi: float = 1.0, cutoff: int = 8) -> np.ndarray:
    """The source network's output at its lod, spelled out: level 4 with 0.4 of level 3, upscaled 2×."""
    snap = load_snapshot(path)
    Gs = network(snap, "Gs")
    w = Gs.truncate(Gs.map(tf.constant(z)), psi, cutoff) if psi != 1.0 else Gs.map(tf.constant(z))
    return upscale2d(Gs.synthesis(w, 4, 0.4, randomize_noise=False), 2).numpy()


def sample_images(snapshot: Path | str, out: Path, *overrides: str) -> list[np.ndarray]:
    cfg = compose_config("sample", f"snapshot={snapshot}", "seeds=[0,1,2]", *overrides)
    paths = start_sampling(cfg, str(out))
    return [np.asarray(Image.open(p)) for p in paths]


def test_snapshot_records_lod_and_samples_as_trained(odd_snapshot, tmp_path):
    snap = load_snapshot(odd_snapshot)
    assert snap.lod == pytest.approx(ODD_LOD) and snap.model == ODD
    expected = to_uint8(as_trained(odd_snapshot, seed_latents([0, 1, 2], 16), psi=0.7))
    got = sample_images(odd_snapshot, tmp_path / "as-trained")
    assert all(im.shape == (32, 32, 3) for im in got)
    assert max(np.abs(g.astype(int) - e).max() for g, e in zip(got, expected, strict=True)) <= 1
    assert np.array_equal(got[0][::2, ::2], got[0][1::2, 1::2])  # 16² upscaled: every 2×2 block is flat

    full = sample_images(odd_snapshot, tmp_path / "full", "full_network=true")
    assert not np.array_equal(full[0][::2, ::2], full[0][1::2, 1::2])


@pytest.fixture
def at_32(synthetic_datasets) -> tuple[str, ...]:
    """Overrides for the 32² snapshot: the tiny experiment on its faces drawn at 32²."""
    return ("dataset.resolution=32", "dataset.synthetic.resolution=32",
            f"dataset.path={synthetic_datasets(resolution=32)}")


@pytest.mark.slow
def test_transfer_adopts_the_architecture_and_starts_at_the_lod(odd_snapshot, at_32, tiny_cfg, tmp_path,
                                                                caplog):
    cfg = tiny_cfg("transfer=snapshot", f"transfer.source={odd_snapshot}", *at_32, "schedule.total_kimg=0.6",
                   "gpus.minibatch_dict={8: 16, 16: 8, 32: 8}")
    run_dir = tmp_path / "transfer"
    caplog.set_level("INFO")
    trainer = Trainer(cfg, run_dir)
    for key in ("fused_scale_min_res", "mapping_lrmul", "fmap_decay", "mbstd_group_size", "fmap_base"):
        assert getattr(trainer.cfg.model, key) == getattr(ODD, key)
        assert f"model.{key}={getattr(ODD, key)} from {odd_snapshot}" in caplog.text
    # lod 1.4 at 32² from 8²: 0.3 kimg at 8² then 0.6 of the 0.3 kimg fade to 16².
    assert trainer.cfg.transfer.resume_kimg == pytest.approx(0.48)
    trainer.run()
    recorded = OmegaConf.load(run_dir / "config.yaml")
    assert recorded.model.fused_scale_min_res == 8 and recorded.transfer.resume_kimg == pytest.approx(0.48)

    n = cfg.grid.width * cfg.grid.height
    grid_z = np.random.RandomState(cfg.grid.seed).randn(n, 16).astype(np.float32)
    first = np.asarray(Image.open(run_dir / "fakes000000.png")).astype(int)
    assert np.abs(first - make_grid(to_uint8(as_trained(odd_snapshot, grid_z)), cfg.grid.width)).max() <= 1
    # The run ends within its starting kimg: its later grids do not overwrite the first one.
    later = sorted(p.name for p in run_dir.glob("fakes000000_*.png"))
    assert later and later[-1] >= "fakes000000_600.png"
    assert load_snapshot(sorted(run_dir.glob("network-snapshot-*.npz"))[-1]).lod < ODD_LOD


def test_explicit_override_against_the_snapshot_is_one_line(odd_snapshot, at_32, tiny_cfg, tmp_path):
    cfg = tiny_cfg("transfer=snapshot", f"transfer.source={odd_snapshot}", *at_32,
                   "model.fused_scale_min_res=128")
    with pytest.raises(ConfigError) as info:
        Trainer(cfg, tmp_path / "run", explicit={"model.fused_scale_min_res"})
    assert "model.fused_scale_min_res=128 contradicts the snapshot's 8" in str(info.value)
    assert "\n" not in str(info.value)


def test_transfer_to_another_size_names_both(odd_snapshot, tiny_cfg, tmp_path):
    cfg = tiny_cfg("transfer=snapshot", f"transfer.source={odd_snapshot}")
    with pytest.raises(ConfigError, match="32² networks .* trains 16² images"):
        Trainer(cfg, tmp_path / "run")


@pytest.mark.slow
def test_original_pickle_at_lod_samples_and_transfers_as_the_original(tmp_path):
    """An original pickle with fused scaling everywhere, mapping lrmul 0.1, fmap decay 0.5 and no noise,
    saved at lod 1.3: sample.py and a transfer's first grid equal the original G_style at that lod."""
    kw = MODELS["res16_allfused_nonoise"]
    raw = write_pkl(tmp_path / "net.pkl", kw, lod=1.3)
    z = seed_latents([0, 1, 2], kw["latent_size"])
    expected = to_uint8(ref_g_style(raw["Gs"], kw, z, 0.7, 8, lod=1.3).transpose(0, 2, 3, 1))[..., 0]
    got = sample_images(tmp_path / "net.pkl", tmp_path / "samples")
    assert max(np.abs(g.astype(int) - e).max() for g, e in zip(got, expected, strict=True)) <= 1

    data = np.random.RandomState(0).randint(0, 256, (16, 16, 16, 1), np.uint8)
    pack_arrays(data, tmp_path / "gray16")
    cfg = to_object(compose_config(
        "train", *TINY, "logger=none", f"outputs_root={tmp_path / 'out'}", "transfer=snapshot",
        f"transfer.source={tmp_path / 'net.pkl'}", f"dataset.path={tmp_path / 'gray16'}",
        "dataset.synthetic=null", "schedule.lod_initial_resolution=4", "schedule.total_kimg=0.55",
        "gpus.minibatch_dict={4: 8, 8: 8, 16: 8}"))
    run_dir = tmp_path / "transfer"
    Trainer(cfg, run_dir).run()
    n = cfg.grid.width * cfg.grid.height
    grid_z = np.random.RandomState(cfg.grid.seed).randn(n, kw["latent_size"]).astype(np.float32)
    ref = to_uint8(ref_g_style(raw["Gs"], kw, grid_z, 1.0, 0, lod=1.3).transpose(0, 2, 3, 1))
    first = np.asarray(Image.open(run_dir / "fakes000000.png")).astype(int)
    assert np.abs(first - make_grid(ref, cfg.grid.width)[..., 0]).max() <= 1


def test_a_run_that_starts_at_its_end_trains_nothing(odd_snapshot, at_32, tiny_cfg, tmp_path, caplog):
    cfg = tiny_cfg("transfer=snapshot", f"transfer.source={odd_snapshot}", *at_32, "transfer.resume_kimg=2",
                   "schedule.total_kimg=2")
    caplog.set_level("WARNING")
    assert Trainer(cfg, tmp_path / "run").run() is None
    assert "nothing to train: schedule.total_kimg=2" in caplog.text
    assert not list((tmp_path / "run").glob("network-snapshot-*"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resuming_a_checkpoint_with_another_model_names_the_overrides(stylegan_run, tiny_cfg, tmp_path):
    run = stylegan_run.copy_to(tmp_path / "outputs")  # resume=latest finds it there
    cfg = tiny_cfg("resume=latest", "model.fmap_max=8")
    with pytest.raises(ConfigError, match="trained with another architecture: resume with model.fmap_max=16"):
        Trainer(cfg, run.outputs / "tiny" / "second")


def test_snapshots_from_before_lods_were_recorded_take_it_from_their_run(odd_snapshot, tmp_path):
    """An older snapshot (no lod in its metadata) beside its run's config.yaml gets the schedule's lod."""
    old = tmp_path / "run" / "network-snapshot-000000.npz"
    old.parent.mkdir()
    with np.load(odd_snapshot) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["__meta__"]))
    del meta["lod"], meta["arch"]
    meta["kimg"] = 0.45  # the tiny schedule at 32² (from 8²): lod 2 - (0.45 - 0.3) / 0.3 = 1.5
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(old, **arrays)
    assert load_snapshot(old).lod == 0.0  # no config beside it: every layer
    OmegaConf.save(compose_config("train", *TINY, "dataset.resolution=32"), old.parent / "config.yaml")
    assert load_snapshot(old).lod == pytest.approx(1.5)
