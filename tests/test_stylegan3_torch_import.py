"""stylegan3 PyTorch network pickles read without torch and without running pickled code: pickles built
here with the genuine structure (tests/original_stylegan3_torch.py), configs T and R at 16² and 32², imported
as our StyleGAN3 and checked against the independent NumPy reference of the original forward passes
(original_stylegan3.py); through sample.py, convert and transfer with real Hydra composition; and settings we
cannot import refused in one line naming them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config
from original_stylegan2_torch import kwargs_edit, module_source_edit, write_network_pkl, write_torch_zip
from original_stylegan3_torch import models, network_data, reference_images, reference_scores
from PIL import Image

from stylegan_exp import convert
from stylegan_exp.config import to_object
from stylegan_exp.grid import to_uint8
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.run import start_sampling
from stylegan_exp.sample.generate import seed_latents

# Tensors stored as torch may store them: a transposed view, behind an offset, in a float16 storage.
LAYOUTS = {"fc1.weight": "transposed", "input.weight": "offset", "affine.bias": "half"}
MODELS = models()


def compare(snap, raw: dict, kw: dict) -> dict[str, float]:
    """max |Δ| of our Gs (ψ 1 and 0.5; StyleGAN3 has no noise) and D against the reference."""
    Gs, D = network(snap, "Gs"), network(snap, "D")
    z = np.random.default_rng(1).standard_normal((3, kw["z_dim"])).astype(np.float32)
    found = {}
    for psi in (1.0, 0.5):
        ours = Gs(tf.constant(z), psi=psi, cutoff=None).numpy()
        theirs = reference_images(kw, raw["Gs"], z, psi)
        contrast = theirs.std(axis=(1, 2)).min()
        assert contrast > 1e-3  # images, not constants
        found[f"G ψ={psi}"] = np.abs(ours - theirs).max()
        assert found[f"G ψ={psi}"] < 1e-3 * min(1.0, contrast), found
    res = kw["img_resolution"]
    images = np.random.default_rng(2).standard_normal((8, res, res, 3)).astype(np.float32)
    images *= np.geomspace(0.1, 10, 8)[:, None, None, None].astype(np.float32)
    scores = reference_scores(kw, raw["D"], images)
    assert scores.std() > 1e-2
    found["D"] = np.abs(D(tf.constant(images)).numpy() - scores).max()
    assert found["D"] < 1e-3 * scores.std(), found
    return found


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_stylegan3_pickle_matches_the_original(tmp_path, name):
    kw = MODELS[name]
    data, raw = network_data(kw, layouts=LAYOUTS)
    write_network_pkl(tmp_path / "network-snapshot-000100.pkl", data)
    snap = load_snapshot(tmp_path / "network-snapshot-000100.pkl")
    model, r = snap.model, name.startswith("R")
    assert isinstance(model, StyleGAN3Config) and (snap.resolution, snap.num_channels) == (
        kw["img_resolution"],
        3,
    )
    assert (model.conv_kernel, model.use_radial_filters, model.channel_scale) == (
        (1, True, 2) if r else (3, False, 1)
    )
    assert (model.cbase, model.cmax, model.num_layers, model.conv_clamp) == (512, 16, 6, 256.0)
    assert not np.array_equal(snap.subset("G")["w_avg"], snap.subset("Gs")["w_avg"])  # G_ema is Gs
    found = compare(snap, raw, kw)
    print(f"{name}: " + ", ".join(f"{k} {v:.1e}" for k, v in found.items()))


def test_a_torch_save_zip_reads_the_same_weights(tmp_path):
    data, _ = network_data(MODELS["R16"])
    write_network_pkl(tmp_path / "net.pkl", data)
    write_torch_zip(tmp_path / "net.pt", data)
    a, b = load_snapshot(tmp_path / "net.pkl"), load_snapshot(tmp_path / "net.pt")
    assert a.model == b.model and a.weights.keys() == b.weights.keys()
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)


def test_the_embedded_module_source_is_never_executed(tmp_path):
    """Every persistence record carries source the original loader exec()s: reading the pickle must not."""
    target = tmp_path / "pwned"
    source = f"import pathlib\npathlib.Path({str(target)!r}).write_text('ran')\n"

    data, _ = network_data(MODELS["T16"], edit=module_source_edit(source))
    write_network_pkl(tmp_path / "net.pkl", data)
    assert isinstance(load_snapshot(tmp_path / "net.pkl").model, StyleGAN3Config)
    assert not target.exists()


def _layer(key: str, layer: str, edit):
    """An edit of one synthesis layer's persistence state in G_ema (or G)."""

    def run(data):
        edit(data[key].meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"][layer].meta["state"])

    return run


def _scale_filter(state):
    buffers = state["_buffers"]
    buffers["down_filter"].value = buffers["down_filter"].value * 1.01


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (kwargs_edit("G", "c_dim", 10), "G_ema is conditional (c_dim=10)"),
        (kwargs_edit("D", "c_dim", 5), "D is conditional (c_dim=5)"),
        (kwargs_edit("G", "fancy", 1), "unsupported G_ema kwargs fancy=1"),
        (
            kwargs_edit("G", "mapping_kwargs", "embed_features", 8),
            "unsupported G_ema mapping_kwargs kwargs embed",
        ),
        (kwargs_edit("D", "architecture", "skip"), "unsupported D setting architecture='skip'"),
        (kwargs_edit("D", "conv_clamp", None), "G_ema and D differ in conv_clamp (256, None)"),
        (
            kwargs_edit("D", "channel_base", 384),
            "unsupported channel_base/channel_max: G_ema's (512, 16) are not D's",
        ),
        (
            _layer("G_ema", "L1_36_16", _scale_filter),
            "G_ema synthesis.L1_36_16.down_filter (shape (12,)) is not",
        ),
        (
            _layer("G", "L2_36_16", lambda s: s["_init_kwargs"].update(in_cutoff=3.0)),
            "G synthesis.L2_36_16 has in_cutoff=3.0, not the inferred model's in_cutoff=2.828",
        ),
        (kwargs_edit("G", "margin_size", 8), "G synthesis layers input, L0_36_16"),
    ],
)
def test_unsupported_stylegan3_pickles_are_refused_in_one_line(tmp_path, edit, message):
    data, _ = network_data(MODELS["T16"], edit=edit)
    write_network_pkl(tmp_path / "bad.pkl", data)
    with pytest.raises(Exception) as info:
        load_snapshot(tmp_path / "bad.pkl")
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_sample_py_and_convert_open_a_stylegan3_pickle(tmp_path):
    kw = MODELS["R16"]
    data, raw = network_data(kw)
    write_network_pkl(tmp_path / "net.pkl", data)
    paths = start_sampling(
        compose_config("sample", f"snapshot={tmp_path / 'net.pkl'}", "seeds=[1,2]", "truncation_psi=0.5"),
        str(tmp_path / "samples"),
    )
    assert [p.name for p in paths] == ["example-1.png", "example-2.png"]
    expected = to_uint8(reference_images(kw, raw["Gs"], seed_latents([1, 2], kw["z_dim"]), 0.5))
    for path, image in zip(paths, expected, strict=True):
        assert np.abs(np.asarray(Image.open(path)).astype(int) - image).max() <= 1  # uint8 rounding

    assert convert.main([str(tmp_path / "net.pkl"), str(tmp_path / "net.npz")]) == 0
    converted, imported = load_snapshot(tmp_path / "net.npz"), load_snapshot(tmp_path / "net.pkl")
    assert converted.model == imported.model and converted.model.truncation_psi == 1.0  # gen_images.py's
    assert all(np.array_equal(converted.weights[k], imported.weights[k]) for k in imported.weights)


def _transfer_config(tmp_path, *overrides: str):
    """The tiny StyleGAN3 experiment transferring from tmp_path/source.pkl, writing under tmp_path."""
    return to_object(compose_config(
        "train", "+experiment=tiny_stylegan3", "logger=none", f"outputs_root={tmp_path / 'outputs'}",
        f"dataset.path={tmp_path / 'synthetic-16'}", "transfer=snapshot",
        f"transfer.source={tmp_path / 'source.pkl'}", *overrides))


def test_transfer_source_may_be_a_stylegan3_pickle(tmp_path):
    """transfer.source=<pkl> on the tiny StyleGAN3 experiment (config T, other sizes): the run adopts the
    pickle's config R and starts from its weights."""
    from stylegan_exp.nets.weights import weights_of
    from stylegan_exp.train.loop import Trainer

    data, _ = network_data(MODELS["R16"])
    write_network_pkl(tmp_path / "source.pkl", data)
    cfg = _transfer_config(tmp_path)
    trainer = Trainer(cfg, tmp_path / "run")
    model = trainer.cfg.model
    assert isinstance(model, StyleGAN3Config) and model.use_radial_filters and model.conv_kernel == 1
    assert (model.cbase, model.channel_scale, model.num_layers, model.latent_size) == (512, 2, 6, 12)
    source = load_snapshot(tmp_path / "source.pkl")
    for key, net in (("Gs", trainer.Gs), ("D", trainer.D)):
        ours = weights_of(net)
        assert all(np.array_equal(ours[k], v) for k, v in source.subset(key).items()), key


@pytest.mark.slow
def test_a_run_from_a_stylegan3_pickle_draws_its_images_and_trains(tmp_path):
    """One tick from a config-T pickle: the first fakes grid (at resume_kimg) is G_ema's output on the grid
    latents as the original computes it, and the run saves a snapshot of the adopted architecture."""
    from stylegan_exp.grid import make_grid
    from stylegan_exp.train.loop import Trainer

    kw = MODELS["T16"]
    data, raw = network_data(kw)
    write_network_pkl(tmp_path / "source.pkl", data)
    cfg = _transfer_config(tmp_path, "transfer.resume_kimg=5.8", "schedule.total_kimg=6")
    Trainer(cfg, tmp_path / "run").run()
    grid_z = np.random.RandomState(cfg.grid.seed).randn(cfg.grid.width * cfg.grid.height, kw["z_dim"])
    expected = make_grid(to_uint8(reference_images(kw, raw["Gs"], grid_z, 1.0)), cfg.grid.width)
    first = np.asarray(Image.open(tmp_path / "run" / "fakes000005.png"))
    assert np.abs(first.astype(int) - expected.astype(int)).max() <= 1
    saved = load_snapshot(tmp_path / "run" / "network-snapshot-000006.npz")
    assert saved.model.num_layers == 6 and saved.model.latent_size == 12 and saved.model.conv_kernel == 3
