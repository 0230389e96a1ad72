"""stylegan2-ada (TensorFlow) `.pkl` import: pickles built here with its structure (G_main = G_mapping +
G_synthesis, D_main, its build kwargs), checked against the independent NumPy reference of the original
forward pass (tests/original_stylegan2.py, with stylegan2-ada's conv_clamp) in float32."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tensorflow as tf
from original_stylegan import fake_dnnlib, our_nets, tflib_network
from original_stylegan2 import BASE, D_KEYS, g_network, make_d_vars, ref_d_stylegan2, ref_g_main

from stylegan_exp.legacy.pickles import LegacyImportError
from stylegan_exp.models import load_snapshot
from stylegan_exp.models.stylegan2.config import StyleGAN2Config

# What stylegan2-ada's train.py puts in G_args / D_args (its float16 and clamping settings included).
ADA_G = {"num_fp16_res": 4, "fused_modconv": True, "style_mixing_prob": 0.9}
ADA_D = {"num_fp16_res": 4, "freeze_layers": 0, "augment_strength": 0}
MODELS = {
    "res32_Gskip_Dresnet_clamp": dict(BASE, resolution=32, fmap_base=128, fmap_max=16, g_arch="skip",
                                      d_arch="resnet", conv_clamp=2.0),
    "res64_Gorig_Dskip_clamp": dict(BASE, resolution=64, fmap_base=64, fmap_max=16, g_arch="orig",
                                    d_arch="skip", conv_clamp=3.0, num_channels=1),
    "res32_Gresnet_Dorig": dict(BASE, resolution=32, fmap_base=128, fmap_max=16, g_arch="resnet",
                                d_arch="orig", conv_clamp=None),
}


def write_ada_pkl(path, kw: dict, seed: int = 0, g_extra: dict | None = None,
                  d_extra: dict | None = None) -> dict:
    """A stylegan2-ada TF (G, D, Gs) pickle: G_main/G_mapping/G_synthesis and D_main with the kwargs its
    train.py records. Returns the raw Gs and D variables."""
    rng = np.random.default_rng(seed)
    extra = {**ADA_G, "conv_clamp": kw["conv_clamp"], **(g_extra or {})}
    nets = {}
    for name in ("G", "Gs"):
        net, raw = g_network(kw, rng, name, extra=extra)
        net._state["components"]["synthesis"]._state["build_func_name"] = "G_synthesis"
        net._state["variables"] = [(k, v) for k, v in net._state["variables"] if k != "lod"]  # ada has none
        nets[name] = (net, raw)
    d_vars = make_d_vars(kw, rng)
    dkw = {**{k: kw[k] for k in D_KEYS}, "architecture": kw["d_arch"], "conv_clamp": kw["conv_clamp"],
           **ADA_D, **(d_extra or {})}
    D = tflib_network("D", "D_main", dkw, d_vars)
    with fake_dnnlib(), open(path, "wb") as f:
        pickle.dump((nets["G"][0], D, nets["Gs"][0]), f, protocol=4)
    return {"Gs": nets["Gs"][1], "D": d_vars}


def d_test_images(kw: dict) -> np.ndarray:
    """Noise images of very different contrast and brightness (NCHW): scores that differ by far more than
    the tolerance."""
    res = kw["resolution"]
    images = np.random.default_rng(2).standard_normal((8, kw["num_channels"], res, res))
    contrast, brightness = np.geomspace(0.1, 10, 8), np.linspace(-3, 3, 8)
    return (images * contrast[:, None, None, None] + brightness[:, None, None, None]).astype(np.float32)


def compare(Gs, D, raw: dict, kw: dict) -> str:
    """Our Gs (ψ 0.5 and 1, const noise) and D against the NumPy reference; returns the differences."""
    z = np.random.default_rng(1).standard_normal((4, kw["latent_size"])).astype(np.float32)
    report = []
    for psi in (0.5, 1.0):
        ours = Gs(tf.constant(z), psi=psi, cutoff=None, randomize_noise=False).numpy()
        ref = ref_g_main(raw["Gs"], kw, z, psi).transpose(0, 2, 3, 1)
        if kw.get("conv_clamp"):  # the clamp changes the outputs: the comparison sees it
            unclamped = ref_g_main(raw["Gs"], dict(kw, conv_clamp=None), z, psi).transpose(0, 2, 3, 1)
            assert np.abs(unclamped - ref).max() > 0.05
        diff = np.abs(ours - ref).max()
        assert diff < 1e-3, (psi, diff)
        report.append(f"G ψ={psi} {diff:.1e}")
    images = d_test_images(kw)
    d_ref = ref_d_stylegan2(raw["D"], kw, images)
    assert d_ref.std() > 0.05
    if kw.get("conv_clamp"):
        assert np.abs(ref_d_stylegan2(raw["D"], dict(kw, conv_clamp=None), images) - d_ref).max() > 0.05
    d_diff = np.abs(D(tf.constant(images.transpose(0, 2, 3, 1))).numpy() - d_ref).max()
    assert d_diff < 1e-3, d_diff
    return f"{', '.join(report)}, D {d_diff:.1e}"


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_stylegan2_ada_matches_original_float32_path(tmp_path, name):
    kw = MODELS[name]
    raw = write_ada_pkl(tmp_path / "ada.pkl", kw)
    snap, weights, Gs, D = our_nets(tmp_path / "ada.pkl")
    model = snap.model
    assert isinstance(model, StyleGAN2Config) and model.conv_clamp == kw["conv_clamp"]
    assert (model.g_architecture, model.d_architecture) == (kw["g_arch"], kw["d_arch"])
    assert (snap.resolution, snap.num_channels) == (kw["resolution"], kw["num_channels"])
    assert not np.array_equal(weights["G"]["w_avg"], weights["Gs"]["w_avg"])
    print(f"{name}: {compare(Gs, D, raw, kw)}")


def test_mapping_fmaps_none_is_dlatent_size(tmp_path):
    kw = dict(MODELS["res32_Gresnet_Dorig"], mapping_fmaps=12)  # = dlatent_size, stored as None
    write_ada_pkl(tmp_path / "ada.pkl", kw, g_extra={"mapping_fmaps": None})
    assert load_snapshot(tmp_path / "ada.pkl").model.mapping_fmaps == 12


KW = MODELS["res32_Gskip_Dresnet_clamp"]


@pytest.mark.parametrize(("g_extra", "d_extra", "message"), [
    ({"label_size": 4}, None, "the networks differ in label_size (Gs 4, G 4, D 0)"),
    ({"architecture": "resnext"}, None, "unsupported Gs setting architecture='resnext' (supported: orig,"),
    (None, {"use_spectral_norm": True}, "unsupported D settings use_spectral_norm=True"),
    (None, {"mbstd_group_size": None}, "unsupported D setting mbstd_group_size=None"),
    ({"fmap_const": 7}, None, "unsupported Gs setting fmap_const=7"),
    ({"nonlinearity": "relu"}, None, "unsupported Gs settings nonlinearity='relu'"),
    ({"spectral": 1}, None, "unsupported Gs settings spectral=1"),
    (None, {"conv_clamp": 256}, "G and D differ in conv_clamp"),
])
def test_unsupported_ada_settings_are_refused_in_one_line(tmp_path, g_extra, d_extra, message):
    write_ada_pkl(tmp_path / "bad.pkl", KW, g_extra=g_extra, d_extra=d_extra)
    with pytest.raises(LegacyImportError) as info:
        load_snapshot(tmp_path / "bad.pkl")
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
