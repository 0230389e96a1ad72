"""Original StyleGAN2 `.pkl` import: pickles built here in the original format, checked against an
independent NumPy (NCHW) re-implementation of the original forward pass (tests/original_stylegan2.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config
from original_stylegan import fake_dnnlib, our_nets, tflib_network
from original_stylegan2 import D_KEYS, MODELS, g_network, make_d_vars, ref_d_stylegan2, ref_g_main, write_pkl

from stylegan_exp import convert
from stylegan_exp.config import to_object
from stylegan_exp.legacy.pickles import LegacyImportError
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology
from stylegan_exp.run import start_sampling


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_stylegan2_matches_original(tmp_path, name):
    kw = MODELS[name]
    raw = write_pkl(tmp_path / "net.pkl", kw)
    snap, weights, Gs, D = our_nets(tmp_path / "net.pkl")
    model = snap.model
    assert isinstance(model, StyleGAN2Config)
    assert (snap.resolution, snap.num_channels) == (kw["resolution"], kw["num_channels"])
    assert (model.g_architecture, model.d_architecture) == (kw["g_arch"], kw["d_arch"])
    for key in ("fmap_base", "fmap_max", "latent_size", "dlatent_size", "mapping_layers", "mapping_fmaps",
                "mapping_lrmul", "mbstd_group_size", "mbstd_num_features"):
        assert getattr(model, key) == kw[key], key
    assert not np.array_equal(weights["G"]["w_avg"], weights["Gs"]["w_avg"])  # G and Gs kept apart

    z = np.random.default_rng(1).standard_normal((4, kw["latent_size"])).astype(np.float32)
    report = []
    for psi in (0.5, 1.0):
        ours = Gs(tf.constant(z), psi=psi, cutoff=None, randomize_noise=False).numpy()
        ref = ref_g_main(raw["Gs"], kw, z, psi).transpose(0, 2, 3, 1)
        g_diff = np.abs(ours - ref).max()
        assert g_diff < 1e-3, (psi, g_diff)
        report.append(f"G ψ={psi} {g_diff:.1e} (|image| ≤ {np.abs(ref).max():.1f})")

    # Noise images of very different contrast and brightness, so the scores differ by far more than 1e-3.
    images = np.random.default_rng(2).standard_normal((8, kw["num_channels"], kw["resolution"],
                                                       kw["resolution"]))
    contrast, brightness = np.geomspace(0.1, 10, 8), np.linspace(-3, 3, 8)
    images = images * contrast[:, None, None, None] + brightness[:, None, None, None]
    images = images.astype(np.float32)
    d_ref = ref_d_stylegan2(raw["D"], kw, images)
    assert d_ref.std() > 0.1
    d_diff = np.abs(D(tf.constant(images.transpose(0, 2, 3, 1))).numpy() - d_ref).max()
    assert d_diff < 1e-3, d_diff
    print(f"{name}: {', '.join(report)}, D {d_diff:.1e} (scores' std {d_ref.std():.2f})")


KW = MODELS["res32_Gskip_Dresnet"]


def test_legacy_converter_and_sample_py_read_a_stylegan2_pickle(tmp_path, capsys):
    raw = write_pkl(tmp_path / "net.pkl", KW)
    assert convert.main([str(tmp_path / "net.pkl"), str(tmp_path / "out.npz")]) == 0
    assert capsys.readouterr().out.strip().endswith("out.npz")
    snap = load_snapshot(tmp_path / "out.npz")
    assert isinstance(snap.model, StyleGAN2Config) and snap.model.g_architecture == Topology.skip
    z = np.random.default_rng(5).standard_normal((2, KW["latent_size"])).astype(np.float32)
    ours = network(snap, "Gs")(tf.constant(z), psi=0.5, cutoff=None, randomize_noise=False).numpy()
    np.testing.assert_allclose(ours, ref_g_main(raw["Gs"], KW, z, 0.5).transpose(0, 2, 3, 1), atol=1e-3)

    paths = start_sampling(compose_config("sample", f"snapshot={tmp_path / 'net.pkl'}", "seeds=[1,2]"),
                           str(tmp_path / "samples"))
    assert sorted(p.name for p in paths) == ["example-1.png", "example-2.png"]


def _set(key, value):
    return lambda kwargs, _vars: kwargs.__setitem__(key, value)


@pytest.mark.parametrize(("edit", "d_edit", "d_func", "message"), [
    (_set("architecture", "orig"), None, "D_stylegan2", "unsupported Gs setting architecture='orig'"),
    (None, _set("architecture", "orig"), "D_stylegan2", "unsupported D setting architecture='orig'"),
    (_set("label_size", 4), None, "D_stylegan2", "unsupported Gs settings label_size=4"),
    (_set("use_noise_gain", 2), None, "D_stylegan2", "unsupported Gs settings use_noise_gain=2"),
    (None, _set("conditioning", "proj"), "D_stylegan2", "unsupported D settings conditioning='proj'"),
    (None, None, "D_stylegan", "D is D_stylegan (StyleGAN2 configs B–D, grown progressively)"),
    (None, _set("fmap_base", 256), "D_stylegan2", "G and D differ in fmap_base"),
])
def test_unsupported_variants_are_refused_in_one_line(tmp_path, edit, d_edit, d_func, message):
    write_pkl(tmp_path / "bad.pkl", KW, edit=edit, d_edit=d_edit, d_func=d_func)
    with pytest.raises(LegacyImportError) as info:
        load_snapshot(tmp_path / "bad.pkl")
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_configs_b_to_d_synthesis_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    Gs, _ = g_network(KW, rng, "Gs")
    Gs._state["components"]["synthesis"]._state["build_func_name"] = "G_synthesis_stylegan_revised"
    D = tflib_network("D", "D_stylegan2", {k: KW[k] for k in D_KEYS}, make_d_vars(KW, rng))
    with fake_dnnlib(), open(tmp_path / "revised.pkl", "wb") as f:
        pickle.dump((Gs, D, Gs), f, protocol=4)
    with pytest.raises(LegacyImportError, match=r"Gs/synthesis is G_synthesis_stylegan_revised \(StyleGAN2 "
                                                r"configs B–D"):
        load_snapshot(tmp_path / "revised.pkl")


def test_missing_variable_is_named(tmp_path):
    write_pkl(tmp_path / "missing.pkl", KW, edit=lambda _kw, syn: syn.pop("16x16/Conv1/noise_strength"))
    with pytest.raises(LegacyImportError, match=r"\(Gs\): missing synthesis/16x16/Conv1/noise_strength"):
        load_snapshot(tmp_path / "missing.pkl")


@pytest.mark.slow
def test_transfer_source_may_be_a_stylegan2_pickle(tiny_dataset, tmp_path):
    """transfer.source=<.pkl>: the first fakes grid (at resume_kimg) is the pickle's Gs output on the grid
    latents."""
    from PIL import Image

    from stylegan_exp.grid import make_grid, to_uint8
    from stylegan_exp.models.stylegan2.training import StyleGAN2Steps
    from stylegan_exp.train.loop import Trainer

    kw = dict(KW, resolution=16, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=2,
              mapping_fmaps=16, mbstd_num_features=1)
    raw = write_pkl(tmp_path / "source.pkl", kw)
    cfg = to_object(compose_config(
        "train", "+experiment=tiny", "model=stylegan2", f"outputs_root={tmp_path / 'outputs'}",
        f"dataset.path={tiny_dataset}", "logger=none", "transfer=snapshot",
        f"transfer.source={tmp_path / 'source.pkl'}", "transfer.resume_kimg=5.8", "schedule.total_kimg=6"))
    Trainer(cfg, tmp_path / "run").run()
    grid_z = np.random.RandomState(cfg.grid.seed).randn(cfg.grid.width * cfg.grid.height, kw["latent_size"])
    expected = to_uint8(ref_g_main(raw["Gs"], kw, grid_z, 1.0).transpose(0, 2, 3, 1))
    first = np.asarray(Image.open(tmp_path / "run" / "fakes000005.png"))  # later ticks write fakes000006
    diff = np.abs(first.astype(int) - make_grid(expected, cfg.grid.width).astype(int))
    assert diff.max() <= 1  # uint8 rounding of values within 1e-3

    # Without model=stylegan2 the run adopts the pickle's architecture (and trains it with StyleGAN2's steps).
    adopting = Trainer(to_object(compose_config(
        "train", "+experiment=tiny", f"outputs_root={tmp_path / 'outputs'}", "logger=none",
        f"dataset.path={tiny_dataset}", "transfer=snapshot",
        f"transfer.source={tmp_path / 'source.pkl'}")), tmp_path / "adopting")
    assert isinstance(adopting.cfg.model, StyleGAN2Config) and isinstance(adopting.steps, StyleGAN2Steps)
