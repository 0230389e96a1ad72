"""Conditional stylegan2-ada pickles (TensorFlow and PyTorch) import: their label embedding and D's label
mapping (cmap) land on ours, checked against NumPy references of the original forward passes (G(z, c) and
D(x, c)) in float32; the imported snapshot's labels are class_0 … and `sample.py tags=[class_i]` samples
them."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config
from original_ada_conditional import (
    one_hot,
    ref_tf_cmap,
    ref_tf_mapping,
    ref_torch_cmap,
    ref_torch_mapping,
    torch_network_data,
    write_tf_pkl,
)
from original_stylegan2 import BASE as TF_BASE
from original_stylegan2 import ref_d_stylegan2, ref_g_main
from original_stylegan2_torch import BASE as TORCH_BASE
from original_stylegan2_torch import kwargs_edit, ref_discriminator, ref_generator, write_network_pkl
from PIL import Image

from stylegan_exp import convert
from stylegan_exp.config import ConfigError, to_object
from stylegan_exp.config_checks import check_values
from stylegan_exp.grid import to_uint8
from stylegan_exp.legacy.pickles import LegacyImportError
from stylegan_exp.models import build_discriminator, load_snapshot, network
from stylegan_exp.run import start_sampling
from stylegan_exp.sample.generate import seed_latents

C_DIM = 5
TOLERANCE = 1e-5
# G's labels: one-hot rows and a multi-hot one; D's: one per test image.
G_LABELS = np.array([[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 0, 0]], np.float32)
D_LABELS = one_hot([0, 1, 2, 3, 4, 0, 3, 2], C_DIM)

TF_MODELS = {  # D_main's default label mapping (0 layers) and one with layers
    "res32_Gskip_Dresnet_clamp_Dmap0": dict(
        TF_BASE, resolution=32, fmap_base=128, fmap_max=16, g_arch="skip", d_arch="resnet", conv_clamp=2.0,
        label_fmaps=12, d_mapping_layers=0, d_mapping_lrmul=0.1),
    "res32_Gresnet_Dorig_Dmap2": dict(
        TF_BASE, resolution=32, fmap_base=128, fmap_max=16, g_arch="resnet", d_arch="orig", conv_clamp=None,
        label_fmaps=12, d_mapping_layers=2, d_mapping_lrmul=0.1),
}
TORCH_BASE_32 = dict(TORCH_BASE, img_resolution=32, channel_base=256)
TORCH_MODELS = {  # D's MappingNetwork defaults (8 layers at lr 0.01, as stylegan2-ada-pytorch trains) and 2
    "res32_Gskip_Dresnet_clamp_Dmap8": (dict(TORCH_BASE_32, g_arch="skip", d_arch="resnet", conv_clamp=2.0),
                                        {}),
    "res32_Gorig_Dskip_Dmap2": (dict(TORCH_BASE_32, g_arch="orig", d_arch="skip", conv_clamp=None),
                                {"num_layers": 2, "lr_multiplier": 0.1}),
}


def d_images(channels: int, res: int) -> np.ndarray:
    images = np.random.default_rng(2).standard_normal((8, channels, res, res))
    contrast, brightness = np.geomspace(0.1, 10, 8), np.linspace(-3, 3, 8)
    return (images * contrast[:, None, None, None] + brightness[:, None, None, None]).astype(np.float32)


def compare(snap, ref_g, ref_d, images: np.ndarray, latent_size: int) -> str:
    """Our Gs (ψ 0.5 and 1, const noise) and D with labels against the references `ref_g(z, c, psi)` (NCHW)
    and `ref_d(images, c)`; labels must change both."""
    assert snap.c_dim == C_DIM and snap.labels.names == [f"class_{i}" for i in range(C_DIM)]
    Gs, D = network(snap, "Gs"), network(snap, "D")
    z = np.random.default_rng(1).standard_normal((len(G_LABELS), latent_size)).astype(np.float32)
    report = []
    for psi in (0.5, 1.0):
        ours = Gs(tf.constant(z), psi=psi, randomize_noise=False, c=tf.constant(G_LABELS)).numpy()
        ref = ref_g(z, G_LABELS, psi).transpose(0, 2, 3, 1)
        assert np.abs(ref - ref_g(z, G_LABELS[::-1], psi).transpose(0, 2, 3, 1)).max() > 0.05
        diff = np.abs(ours - ref).max()
        assert diff < TOLERANCE, (psi, diff)
        report.append(f"G ψ={psi} {diff:.1e} (|ref| ≤ {np.abs(ref).max():.2f})")
    d_ref = ref_d(images, D_LABELS)
    assert np.abs(d_ref - ref_d(images, D_LABELS[::-1])).max() > 0.05
    ours = D(tf.constant(images.transpose(0, 2, 3, 1)), c=tf.constant(D_LABELS)).numpy()
    d_diff = np.abs(ours - d_ref).max()
    assert d_diff < TOLERANCE, d_diff
    return f"{', '.join(report)}, D {d_diff:.1e} (|ref| ≤ {np.abs(d_ref).max():.2f})"


@pytest.mark.parametrize("name", list(TF_MODELS))
def test_conditional_tf_pickle_matches_original(tmp_path, name):
    kw = TF_MODELS[name]
    raw = write_tf_pkl(tmp_path / "ada.pkl", kw, C_DIM)
    snap = load_snapshot(tmp_path / "ada.pkl")
    assert snap.model.conditional and snap.model.label_mapping_layers == kw["d_mapping_layers"]

    def ref_g(z, c, psi):
        return ref_g_main(raw["Gs"], kw, z, psi, w=ref_tf_mapping(raw["Gs"][1], kw, z, c))

    def ref_d(images, c):
        return ref_d_stylegan2(raw["D"], kw, images, cmap=ref_tf_cmap(raw["D"], kw, c))

    print(f"{name}: {compare(snap, ref_g, ref_d, d_images(3, 32), kw['latent_size'])}")


@pytest.mark.parametrize("name", list(TORCH_MODELS))
def test_conditional_pytorch_pickle_matches_original(tmp_path, name):
    kw, d_mapping = TORCH_MODELS[name]
    data, raw = torch_network_data(kw, C_DIM, d_mapping=d_mapping)
    write_network_pkl(tmp_path / "net.pkl", data)
    snap = load_snapshot(tmp_path / "net.pkl")
    assert snap.model.conditional and snap.model.label_mapping_layers == d_mapping.get("num_layers", 8)

    def ref_g(z, c, psi):
        return ref_generator(raw["Gs"], kw, z, psi, w=ref_torch_mapping(raw["Gs"], kw, z, c))

    def ref_d(images, c):
        return ref_discriminator(raw["D"], kw, images, cmap=ref_torch_cmap(raw["D"], c, d_mapping))

    print(f"{name}: {compare(snap, ref_g, ref_d, d_images(kw['img_channels'], 32), kw['z_dim'])}")


SAMPLE_KW = dict(TORCH_BASE, img_resolution=16, channel_base=128, z_dim=16, w_dim=16, num_layers=2,
                 layer_features=16, mbstd_num_channels=1, g_arch="skip", d_arch="resnet", conv_clamp=2.0)


def test_sample_py_samples_a_conditional_pickle_by_class_tags_and_convert_keeps_them(tmp_path, caplog):
    data, raw = torch_network_data(SAMPLE_KW, C_DIM)
    write_network_pkl(tmp_path / "net.pkl", data)
    cfg = compose_config("sample", f"snapshot={tmp_path / 'net.pkl'}", "seeds=[1,2]", "tags=[class_3]",
                         "truncation_psi=1")
    with caplog.at_level(logging.INFO):
        paths = start_sampling(cfg, str(tmp_path / "samples"))
    said = [r.getMessage() for r in caplog.records if "names none" in r.getMessage()]
    assert said == [f"{tmp_path / 'net.pkl'} is conditional on 5 labels but names none: they are "
                    "class_0 … class_4 (sample with tags=[class_4])"]
    z = seed_latents([1, 2], 16)

    def reference(classes):
        w = ref_torch_mapping(raw["Gs"], SAMPLE_KW, z, one_hot(classes, C_DIM))
        return to_uint8(ref_generator(raw["Gs"], SAMPLE_KW, z, 1.0, w=w).transpose(0, 2, 3, 1))

    expected, other = reference([3, 3]), reference([0, 0])
    assert [p.name for p in paths] == ["example-1.png", "example-2.png"]
    for path, image, unlike in zip(paths, expected, other, strict=True):
        found = np.asarray(Image.open(path)).astype(int)
        assert np.abs(found - image).max() <= 1 < np.abs(found - unlike).max()  # uint8 rounding

    assert convert.main([str(tmp_path / "net.pkl"), str(tmp_path / "net.npz")]) == 0
    converted, imported = load_snapshot(tmp_path / "net.npz"), load_snapshot(tmp_path / "net.pkl")
    assert converted.labels.names == imported.labels.names and converted.model == imported.model
    assert all(np.array_equal(converted.weights[k], imported.weights[k]) for k in imported.weights)


TF_KW = TF_MODELS["res32_Gskip_Dresnet_clamp_Dmap0"]


@pytest.mark.parametrize(("kw", "d_extra", "message"), [
    (TF_KW, {"label_size": 0}, "the networks differ in label_size (Gs 5, G 5, D 0): a conditional pickle"),
    (dict(TF_KW, label_fmaps=16), None, "unsupported Gs setting label_fmaps=16 (the label embedding's"),
    (TF_KW, {"mapping_fmaps": 8}, "unsupported D setting mapping_fmaps=8 (the label mapping's width; only"),
])
def test_unsupported_conditional_tf_pickles_are_refused_in_one_line(tmp_path, kw, d_extra, message):
    write_tf_pkl(tmp_path / "bad.pkl", kw, C_DIM, d_extra=d_extra)
    with pytest.raises(LegacyImportError) as info:
        load_snapshot(tmp_path / "bad.pkl")
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize(("edit", "message"), [
    (kwargs_edit("G", "mapping_kwargs", "embed_features", 7),
     "unsupported G_ema mapping_kwargs embed_features=7 (only w_dim = 12)"),
    (kwargs_edit("D", "cmap_dim", 8), "unsupported D settings cmap_dim=8 (the label mapping's width; only"),
    (kwargs_edit("D", "mapping_kwargs", "activation", "relu"),
     "unsupported D mapping_kwargs kwargs activation='relu'"),
    (kwargs_edit("D", "c_dim", 3), "G_ema is conditional (c_dim=5) but D c_dim=3"),
])
def test_unsupported_conditional_pytorch_pickles_are_refused_in_one_line(tmp_path, edit, message):
    data, _ = torch_network_data(TORCH_MODELS["res32_Gorig_Dskip_Dmap2"][0], C_DIM, edit=edit)
    write_network_pkl(tmp_path / "bad.pkl", data)
    with pytest.raises(LegacyImportError) as info:
        load_snapshot(tmp_path / "bad.pkl")
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_d_label_mapping_layers_are_a_checked_knob():
    cfg = to_object(compose_config("train", "+experiment=tiny", "model.label_mapping_layers=-1",
                                   "model.label_mapping_lrmul=0"))
    with pytest.raises(ConfigError) as info:
        check_values(cfg)
    message = str(info.value)
    assert "model.label_mapping_layers=-1 (must be >= 0 (or null))" in message, message
    assert "model.label_mapping_lrmul=0" in message and "\n" not in message, message
    model = dataclasses.replace(cfg.model, label_mapping_layers=None, label_mapping_lrmul=None)
    default = build_discriminator(model, 16, c_dim=3).label_mapping.dense  # as G's mapping
    assert len(default) == model.mapping_layers == 2 and default[0].lrmul == model.mapping_lrmul
    own = dataclasses.replace(model, label_mapping_layers=1, label_mapping_lrmul=0.1)
    assert [layer.lrmul for layer in build_discriminator(own, 16, c_dim=3).label_mapping.dense] == [0.1]
