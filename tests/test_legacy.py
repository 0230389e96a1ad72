"""Original StyleGAN `.pkl` import: pickles built here in the original format, checked against an
independent NumPy (NCHW) re-implementation of G_style / G_synthesis / D_basic (tests/original_stylegan.py)."""

from __future__ import annotations

import io
import pickle
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from original_stylegan import (
    D_KEYS,
    G_KEYS,
    MODELS,
    fake_dnnlib,
    make_d_vars,
    make_g_vars,
    our_nets,
    ref_d_basic,
    ref_g_style,
    tflib_network,
    write_pkl,
)

from stylegan_exp import legacy
from stylegan_exp.legacy.pickles import LegacyImportError, read_snapshot
from stylegan_exp.legacy import convert
from stylegan_exp.legacy.pickles import LegacyUnpickler
from stylegan_exp.models import load_snapshot


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_networks_match_original(tmp_path, name):
    kw = MODELS[name]
    raw = write_pkl(tmp_path / "net.pkl", kw)
    snap, weights, Gs, D = our_nets(tmp_path / "net.pkl")
    model = snap.infer_model()
    assert snap.resolution == kw["resolution"] and snap.num_channels == kw["num_channels"]
    assert model.fused_scale_min_res == {"auto": 128, True: 8}[kw["fused_scale"]]
    for key in ("fmap_base", "fmap_decay", "fmap_max", "latent_size", "dlatent_size", "mapping_layers",
                "mapping_fmaps", "mapping_lrmul", "use_noise", "mbstd_group_size", "mbstd_num_features"):
        assert getattr(model, key) == kw[key], key
    assert not np.array_equal(weights["G"]["w_avg"], weights["Gs"]["w_avg"])  # G and Gs kept apart

    z = np.random.default_rng(1).standard_normal((4, kw["latent_size"])).astype(np.float32)
    psi, cutoff = 0.7, 5
    ours = Gs(tf.constant(z), psi=psi, cutoff=cutoff, randomize_noise=False).numpy()
    ref = ref_g_style(raw["Gs"], kw, z, psi, cutoff).transpose(0, 2, 3, 1)
    g_diff = np.abs(ours - ref).max()
    assert g_diff < 1e-3, g_diff

    images = np.random.default_rng(2).standard_normal((8, kw["num_channels"], kw["resolution"],
                                                       kw["resolution"])).astype(np.float32)
    d_ours = D(tf.constant(images.transpose(0, 2, 3, 1))).numpy()
    d_diff = np.abs(d_ours - ref_d_basic(raw["D"], kw, images)).max()
    assert d_diff < 1e-3, d_diff
    print(f"{name}: Gs max abs diff {g_diff:.2e} (image range {np.abs(ref).max():.1f}), D {d_diff:.2e}")


def test_progressive_blend_matches_original_lod(tmp_path):
    """Our (level, fade) equals the original's lod_in = lod + fade (Grow_lod lerp_clip) for G and D."""
    kw = MODELS["res32"]
    raw = write_pkl(tmp_path / "net.pkl", kw)
    _, _, Gs, D = our_nets(tmp_path / "net.pkl")
    z = np.random.default_rng(3).standard_normal((4, kw["latent_size"])).astype(np.float32)
    w = Gs.map(tf.constant(z))
    ours = Gs.synthesis(w, 5, 0.4, randomize_noise=False).numpy()
    ref = ref_g_style(raw["Gs"], kw, z, 1.0, 0, lod=0.4).transpose(0, 2, 3, 1)
    assert np.abs(ours - ref).max() < 1e-3
    images = np.random.default_rng(4).standard_normal((8, 3, 32, 32)).astype(np.float32)
    d_ours = D(tf.constant(images.transpose(0, 2, 3, 1)), 5, 0.4).numpy()
    assert np.abs(d_ours - ref_d_basic(raw["D"], kw, images, lod=0.4)).max() < 1e-3


def test_import_pkl_writes_a_usable_snapshot(tmp_path, capsys):
    kw = MODELS["res32"]
    raw = write_pkl(tmp_path / "net.pkl", kw)
    assert legacy.main([str(tmp_path / "net.pkl"), str(tmp_path / "out.npz")]) == 0
    assert capsys.readouterr().out.strip().endswith("out.npz")
    snap = load_snapshot(tmp_path / "out.npz")
    Gs, D = snap.network("Gs"), snap.network("D")
    z = np.random.default_rng(5).standard_normal((2, kw["latent_size"])).astype(np.float32)
    ours = Gs(tf.constant(z), psi=0.5, cutoff=8, randomize_noise=False).numpy()
    ref = ref_g_style(raw["Gs"], kw, z, 0.5, 8).transpose(0, 2, 3, 1)
    assert np.abs(ours - ref).max() < 1e-3
    assert D.blocks[0].dense0.weight.shape == (16 * 16, 16)


def _drop(name):
    return lambda syn: syn.pop(name)


def _add(name):
    return lambda syn: syn.__setitem__(name, np.zeros([3], np.float32))


def test_missing_and_unknown_variables_are_named(tmp_path):
    kw = MODELS["res32"]
    write_pkl(tmp_path / "missing.pkl", kw, edit=_drop("8x8/Conv1/StyleMod/bias"))
    with pytest.raises(LegacyImportError, match=r"\(Gs\): missing synthesis/8x8/Conv1/StyleMod/bias"):
        convert(read_snapshot(tmp_path / "missing.pkl"))
    write_pkl(tmp_path / "unknown.pkl", kw, edit=_add("16x16/Extra/weight"))
    with pytest.raises(LegacyImportError, match=r"unknown synthesis/16x16/Extra/weight"):
        convert(read_snapshot(tmp_path / "unknown.pkl"))
    bad = dict(kw, use_pixel_norm=True)
    G_KEYS_BAD = (*G_KEYS, "use_pixel_norm")
    rng = np.random.default_rng(0)
    gkw = {k: bad[k] for k in G_KEYS_BAD}
    own, mapping, syn = make_g_vars(kw, rng)
    comps = {"synthesis": tflib_network("G_synthesis", "G_synthesis", gkw, syn),
             "mapping": tflib_network("G_mapping", "G_mapping", gkw, mapping)}
    Gs = tflib_network("Gs", "G_style", gkw, own, comps)
    D = tflib_network("D", "D_basic", {k: kw[k] for k in D_KEYS}, make_d_vars(kw, rng))
    with fake_dnnlib(), open(tmp_path / "pn.pkl", "wb") as f:
        pickle.dump((Gs, D, Gs), f, protocol=4)
    with pytest.raises(LegacyImportError, match="unsupported Gs settings use_pixel_norm=True"):
        read_snapshot(tmp_path / "pn.pkl").infer_model()
    Gs._state["components"]["synthesis"]._state["build_func_name"] = "G_synthesis_stylegan2"
    with fake_dnnlib(), open(tmp_path / "sg2.pkl", "wb") as f:
        pickle.dump((Gs, D, Gs), f, protocol=4)
    with pytest.raises(LegacyImportError, match="Gs/synthesis is G_synthesis_stylegan2"):
        convert(read_snapshot(tmp_path / "sg2.pkl"))


def test_unreadable_inputs_give_one_line_errors(tmp_path, capsys):
    text = tmp_path / "notes.pkl"
    text.write_text("not a pickle\n")
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"G": 1}))
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(print))  # builtins.print: refused, never resolved
    for path in (text, other, evil, tmp_path / "absent.pkl"):
        with pytest.raises(LegacyImportError) as info:
            read_snapshot(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message
    assert legacy.main([str(text), str(tmp_path / "out.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a StyleGAN pickle" in err
    assert not (tmp_path / "out.npz").exists()


def test_url_download_is_cached(tmp_path, monkeypatch):
    """http(s) sources are downloaded once into the cache dir (here from a local file:// stand-in)."""
    kw = MODELS["res16_allfused_nonoise"]
    write_pkl(tmp_path / "net.pkl", kw)
    calls = []
    real_urlopen = urllib.request.urlopen

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return real_urlopen((tmp_path / "net.pkl").as_uri())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    url = "https://example.org/models/net.pkl"
    first = read_snapshot(url, cache_dir=tmp_path / "cache")
    second = read_snapshot(url, cache_dir=tmp_path / "cache")
    assert len(calls) == 1 and first.resolution == second.resolution == 16
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".pkl"]


def test_pickles_of_numpy_1_resolve_under_numpy_2():
    """TF1-era pickles name numpy.core.multiarray; only numpy's array helpers and Network resolve."""
    unpickler = LegacyUnpickler(io.BytesIO())
    assert unpickler.find_class("numpy.core.multiarray", "_reconstruct") is np.zeros(1).__reduce__()[0]
    assert unpickler.find_class("numpy", "dtype") is np.dtype
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        unpickler.find_class("os", "system")
