"""Original StyleGAN2 `.pkl` import: pickles built here in the original format (G_main = G_mapping +
G_synthesis_stylegan2, D_stylegan2), checked against an independent NumPy (NCHW) re-implementation of the
original forward pass (fused modulated convolutions, upfirdn2d with [1,3,3,1], skip/resnet G and D)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config
from test_legacy import _fake_dnnlib, _net, _our_nets, conv2d

from stylegan_exp import legacy
from stylegan_exp.config import Architecture, StyleGAN2Config, to_object
from stylegan_exp.legacy import LegacyImportError, convert, load_pkl
from stylegan_exp.run import start_sampling
from stylegan_exp.snapshot import load_snapshot

SQRT2 = math.sqrt(2.0)
TAPS = [1, 3, 3, 1]

# ---------------------------------------------------------------------------------------------------
# Random weights with the original names and NCHW shapes.


def _nf(kw: dict):
    return lambda s: int(np.clip(int(kw["fmap_base"] / (2.0 ** (s * kw.get("fmap_decay", 1.0)))),
                                 kw.get("fmap_min", 1), kw["fmap_max"]))


def _normal(rng: np.random.Generator):
    return lambda *shape, std=1.0: (rng.standard_normal(shape) * std).astype(np.float32)


def make_g_vars(kw: dict, rng: np.random.Generator) -> tuple[dict, dict, dict]:
    """(G_main own, G_mapping, G_synthesis_stylegan2) variables."""
    n, nf, L = _normal(rng), _nf(kw), int(math.log2(kw["resolution"]))
    dl, lrmul, arch = kw["dlatent_size"], kw["mapping_lrmul"], kw["g_arch"]
    own = {"lod": np.float32(0), "dlatent_avg": n(dl, std=0.3)}
    mapping = {}
    for i in range(kw["mapping_layers"]):
        fin = kw["latent_size"] if i == 0 else kw["mapping_fmaps"]
        fout = dl if i == kw["mapping_layers"] - 1 else kw["mapping_fmaps"]
        mapping[f"Dense{i}/weight"] = n(fin, fout, std=1 / lrmul)
        mapping[f"Dense{i}/bias"] = n(fout, std=0.2 / lrmul)
    syn = {f"noise{i}": n(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(2 * L - 3)}

    def layer(scope: str, fin: int, fout: int, kernel: int, noise: bool = True) -> None:
        syn[f"{scope}/weight"] = n(kernel, kernel, fin, fout)
        syn[f"{scope}/mod_weight"] = n(dl, fin)
        syn[f"{scope}/mod_bias"] = n(fin, std=0.2)
        if noise:
            syn[f"{scope}/noise_strength"] = n(std=0.3)
        syn[f"{scope}/bias"] = n(fout, std=0.2)

    syn["4x4/Const/const"] = n(1, nf(1), 4, 4)
    layer("4x4/Conv", nf(1), nf(1), 3)
    if arch == "skip":
        layer("4x4/ToRGB", nf(1), kw["num_channels"], 1, noise=False)
    for res in range(3, L + 1):
        r = 2**res
        layer(f"{r}x{r}/Conv0_up", nf(res - 2), nf(res - 1), 3)
        layer(f"{r}x{r}/Conv1", nf(res - 1), nf(res - 1), 3)
        if arch == "resnet":
            syn[f"{r}x{r}/Skip/weight"] = n(1, 1, nf(res - 2), nf(res - 1))
        if arch == "skip" or res == L:
            layer(f"{r}x{r}/ToRGB", nf(res - 1), kw["num_channels"], 1, noise=False)
    return own, mapping, syn


def make_d_vars(kw: dict, rng: np.random.Generator) -> dict:
    n, nf, L, arch = _normal(rng), _nf(kw), int(math.log2(kw["resolution"])), kw["d_arch"]
    d = {}

    def layer(scope: str, fin: int, fout: int, kernel: int, bias: bool = True) -> None:
        d[f"{scope}/weight"] = n(kernel, kernel, fin, fout)
        if bias:
            d[f"{scope}/bias"] = n(fout, std=0.2)

    for res in range(L, 2, -1):
        r = 2**res
        if arch == "skip" or res == L:
            layer(f"{r}x{r}/FromRGB", kw["num_channels"], nf(res - 1), 1)
        layer(f"{r}x{r}/Conv0", nf(res - 1), nf(res - 1), 3)
        layer(f"{r}x{r}/Conv1_down", nf(res - 1), nf(res - 2), 3)
        if arch == "resnet":
            layer(f"{r}x{r}/Skip", nf(res - 1), nf(res - 2), 1, bias=False)
    if arch == "skip":
        layer("4x4/FromRGB", kw["num_channels"], nf(1), 1)
    layer("4x4/Conv", nf(1) + kw["mbstd_num_features"], nf(1), 3)
    d["4x4/Dense0/weight"] = n(nf(1) * 16, nf(0))
    d["4x4/Dense0/bias"] = n(nf(0), std=0.2)
    d["Output/weight"] = n(nf(0), 1)
    d["Output/bias"] = n(1, std=0.2)
    return d


G_KEYS = ("num_channels", "resolution", "label_size", "fmap_base", "fmap_max", "latent_size", "dlatent_size",
          "mapping_layers", "mapping_fmaps", "mapping_lrmul")
D_KEYS = ("num_channels", "resolution", "label_size", "fmap_base", "fmap_max", "mbstd_group_size",
          "mbstd_num_features")


def _g_network(kw: dict, rng: np.random.Generator, name: str, edit=None, extra: dict | None = None):
    own, mapping, syn = make_g_vars(kw, rng)
    gkw = {**{k: kw[k] for k in G_KEYS}, "architecture": kw["g_arch"], **(extra or {})}
    if edit:
        edit(gkw, syn)
    mkw = {**gkw, "dlatent_broadcast": 2 * int(math.log2(kw["resolution"])) - 2}
    comps = {"synthesis": _net("G_synthesis", "G_synthesis_stylegan2", gkw, syn),
             "mapping": _net("G_mapping", "G_mapping", mkw, mapping)}
    return _net(name, "G_main", gkw, own, comps), (own, mapping, syn)


def write_pkl(path, kw: dict, seed: int = 0, edit=None, d_edit=None, d_func: str = "D_stylegan2") -> dict:
    """An original-format StyleGAN2 (G, D, Gs) pickle; returns the raw Gs and D variables. `edit(kwargs,
    synthesis_vars)` / `d_edit(kwargs, vars)` change Gs / D before pickling."""
    rng = np.random.default_rng(seed)
    G, _ = _g_network(kw, rng, "G")
    Gs, gs_vars = _g_network(kw, rng, "Gs", edit)
    d_vars = make_d_vars(kw, rng)
    dkw = {**{k: kw[k] for k in D_KEYS}, "architecture": kw["d_arch"]}
    if d_edit:
        d_edit(dkw, d_vars)
    D = _net("D", d_func, dkw, d_vars)
    with _fake_dnnlib(), open(path, "wb") as f:
        pickle.dump((G, D, Gs), f, protocol=4)
    return {"Gs": gs_vars, "D": d_vars}


# ---------------------------------------------------------------------------------------------------
# NumPy reference of the original networks (NCHW), written from networks_stylegan2.py and upfirdn_2d.py.


def lrelu_gain(x):
    return np.maximum(x, 0.2 * x) * SQRT2


def he(w, lrmul=1.0):
    """get_weight with gain 1: N(0, 1) storage, runtime coefficient lrmul / sqrt(fan_in)."""
    return w * (lrmul / np.sqrt(np.prod(w.shape[:-1])))


def setup_kernel(k):
    k = np.outer(k, k).astype(np.float64)
    return k / k.sum()


def upfirdn(x, k, up=1, down=1, pad0=0, pad1=0):
    """_upfirdn_2d_ref: zero insertion, zero padding, true convolution with k, decimation."""
    n, c, h, w = x.shape
    xu = np.zeros((n, c, h * up, w * up))
    xu[:, :, ::up, ::up] = x
    xp = np.pad(xu, ((0, 0), (0, 0), (pad0, pad1), (pad0, pad1)))
    kf = k[::-1, ::-1]
    kh = k.shape[0]
    oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kh + 1
    out = sum(kf[a, b] * xp[:, :, a : a + oh, b : b + ow] for a in range(kh) for b in range(kh))
    return out[:, :, ::down, ::down]


def upsample_2d(x):
    k = setup_kernel(TAPS) * 4
    p = k.shape[0] - 2
    return upfirdn(x, k, up=2, pad0=(p + 1) // 2 + 1, pad1=p // 2)


def downsample_2d(x):
    k = setup_kernel(TAPS)
    p = k.shape[0] - 2
    return upfirdn(x, k, down=2, pad0=(p + 1) // 2, pad1=p // 2)


def conv2d_transpose(x, f):
    """tf.nn.conv2d_transpose(stride 2, VALID) for filter f [k, k, out, in]: each input pixel scatters f."""
    n, _, h, w = x.shape
    k = f.shape[0]
    out = np.zeros((n, f.shape[2], 2 * (h - 1) + k, 2 * (w - 1) + k))
    for a in range(k):
        for b in range(k):
            out[:, :, a : a + 2 * h : 2, b : b + 2 * w : 2] += np.einsum("nihw,oi->nohw", x, f[a, b])
    return out


def upsample_conv_2d(x, w):
    """upsample_conv_2d: transposed conv with the flipped [k, k, out, in] weight, then the filter."""
    k = setup_kernel(TAPS) * 4
    p = (k.shape[0] - 2) - (w.shape[0] - 1)
    y = conv2d_transpose(x, np.transpose(w[::-1, ::-1], (0, 1, 3, 2)))
    return upfirdn(y, k, pad0=(p + 1) // 2 + 1, pad1=p // 2 + 1)


def conv_downsample_2d(x, w):
    k = setup_kernel(TAPS)
    p = (k.shape[0] - 2) + (w.shape[0] - 1)
    x = upfirdn(x, k, pad0=(p + 1) // 2, pad1=p // 2)
    kh = w.shape[0]
    oh, ow = (x.shape[2] - kh) // 2 + 1, (x.shape[3] - kh) // 2 + 1
    out = np.zeros((x.shape[0], w.shape[3], oh, ow))
    for a in range(kh):
        for b in range(kh):
            out += np.einsum("nihw,io->nohw", x[:, :, a : a + 2 * oh : 2, b : b + 2 * ow : 2], w[a, b])
    return out


def modulated_conv(x, style_in, syn, scope, demodulate=True, up=False):
    """The fused form: one modulated (and demodulated) weight per sample, each sample convolved alone."""
    w = he(syn[f"{scope}/weight"])
    s = style_in @ he(syn[f"{scope}/mod_weight"]) + syn[f"{scope}/mod_bias"] + 1  # [B, I]
    ww = w[None] * s[:, None, None, :, None]  # [B, k, k, I, O]
    if demodulate:
        ww = ww / np.sqrt((ww**2).sum(axis=(1, 2, 3)) + 1e-8)[:, None, None, None, :]
    conv = upsample_conv_2d if up else conv2d
    return np.concatenate([conv(x[b : b + 1], ww[b]) for b in range(len(x))])


def ref_mapping(mapping, kw, z):
    x = z.astype(np.float64)
    x = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-8)
    lrmul = kw["mapping_lrmul"]
    for i in range(kw["mapping_layers"]):
        x = lrelu_gain(x @ he(mapping[f"Dense{i}/weight"], lrmul) + mapping[f"Dense{i}/bias"] * lrmul)
    return x


def ref_g_main(gv, kw, z, psi):
    """G_main with randomize_noise=False and truncation_cutoff None (every layer)."""
    own, mapping, syn = gv
    L, arch = int(math.log2(kw["resolution"])), kw["g_arch"]
    num_layers = 2 * L - 2
    dl = np.tile(ref_mapping(mapping, kw, z)[:, None], [1, num_layers, 1])
    dl = own["dlatent_avg"] + (dl - own["dlatent_avg"]) * psi

    def layer(x, idx, scope, up=False):
        x = modulated_conv(x, dl[:, idx], syn, scope, up=up)
        x = x + syn[f"noise{idx}"] * syn[f"{scope}/noise_strength"]
        return lrelu_gain(x + syn[f"{scope}/bias"][None, :, None, None])

    def torgb(x, y, res):
        scope = f"{2**res}x{2**res}/ToRGB"
        t = modulated_conv(x, dl[:, res * 2 - 3], syn, scope, demodulate=False)
        t = t + syn[f"{scope}/bias"][None, :, None, None]
        return t if y is None else y + t

    x = np.tile(syn["4x4/Const/const"], [len(z), 1, 1, 1])
    x = layer(x, 0, "4x4/Conv")
    y = torgb(x, None, 2) if arch == "skip" else None
    for res in range(3, L + 1):
        r = 2**res
        t = x
        x = layer(x, res * 2 - 5, f"{r}x{r}/Conv0_up", up=True)
        x = layer(x, res * 2 - 4, f"{r}x{r}/Conv1")
        if arch == "resnet":
            t = upsample_conv_2d(t, he(syn[f"{r}x{r}/Skip/weight"]))
            x = (x + t) * (1 / np.sqrt(2))
        if arch == "skip":
            y = upsample_2d(y)
        if arch == "skip" or res == L:
            y = torgb(x, y, res)
    return y


def ref_d_stylegan2(d, kw, images):
    L, arch = int(math.log2(kw["resolution"])), kw["d_arch"]

    def conv_layer(x, scope, act=True, down=False):
        w = he(d[f"{scope}/weight"])
        x = conv_downsample_2d(x, w) if down else conv2d(x, w)
        if f"{scope}/bias" in d:
            x = x + d[f"{scope}/bias"][None, :, None, None]
        return lrelu_gain(x) if act else x

    def fromrgb(x, y, scope):
        t = conv_layer(y, scope)
        return t if x is None else x + t

    x, y = None, images.astype(np.float64)
    for res in range(L, 2, -1):
        r = 2**res
        if arch == "skip" or res == L:
            x = fromrgb(x, y, f"{r}x{r}/FromRGB")
        t = x
        x = conv_layer(x, f"{r}x{r}/Conv0")
        x = conv_layer(x, f"{r}x{r}/Conv1_down", down=True)
        if arch == "resnet":
            t = conv_layer(t, f"{r}x{r}/Skip", act=False, down=True)
            x = (x + t) * (1 / np.sqrt(2))
        if arch == "skip":
            y = downsample_2d(y)
    if arch == "skip":
        x = fromrgb(x, y, "4x4/FromRGB")
    g, nfeat = min(kw["mbstd_group_size"], len(x)), kw["mbstd_num_features"]
    n, c, h, w = x.shape
    s = x.reshape(g, -1, nfeat, c // nfeat, h, w)
    s = np.sqrt(((s - s.mean(axis=0, keepdims=True)) ** 2).mean(axis=0) + 1e-8).mean(axis=(2, 3, 4))
    x = np.concatenate([x, np.tile(s[:, :, None, None], [g, 1, h, w])], axis=1)
    x = conv_layer(x, "4x4/Conv")
    x = lrelu_gain(x.reshape(len(x), -1) @ he(d["4x4/Dense0/weight"]) + d["4x4/Dense0/bias"])
    return (x @ he(d["Output/weight"]) + d["Output/bias"])[:, 0]


# ---------------------------------------------------------------------------------------------------
# Test models: 32² and 64², skip and resnet for G and D.

BASE = dict(num_channels=3, label_size=0, latent_size=16, dlatent_size=12, mapping_layers=3, mapping_fmaps=10,
            mapping_lrmul=0.01, mbstd_group_size=4, mbstd_num_features=2)
MODELS = {
    "res32_Gskip_Dresnet": dict(BASE, resolution=32, fmap_base=128, fmap_max=16, g_arch="skip",
                                d_arch="resnet"),
    "res32_Gresnet_Dskip": dict(BASE, resolution=32, fmap_base=128, fmap_max=16, g_arch="resnet",
                                d_arch="skip"),
    "res64_Gskip_Dskip": dict(BASE, resolution=64, fmap_base=64, fmap_max=16, g_arch="skip", d_arch="skip"),
    "res64_Gresnet_Dresnet": dict(BASE, resolution=64, fmap_base=64, fmap_max=16, g_arch="resnet",
                                  d_arch="resnet", num_channels=1),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_imported_stylegan2_matches_original(tmp_path, name):
    kw = MODELS[name]
    raw = write_pkl(tmp_path / "net.pkl", kw)
    snap, weights, Gs, D = _our_nets(tmp_path / "net.pkl")
    model = snap.infer_model()
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
    assert legacy.main([str(tmp_path / "net.pkl"), str(tmp_path / "out.npz")]) == 0
    assert capsys.readouterr().out.strip().endswith("out.npz")
    snap = load_snapshot(tmp_path / "out.npz")
    assert isinstance(snap.model, StyleGAN2Config) and snap.model.g_architecture == Architecture.skip
    z = np.random.default_rng(5).standard_normal((2, KW["latent_size"])).astype(np.float32)
    ours = snap.network("Gs")(tf.constant(z), psi=0.5, cutoff=None, randomize_noise=False).numpy()
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
        convert(load_pkl(tmp_path / "bad.pkl"))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_configs_b_to_d_synthesis_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    Gs, _ = _g_network(KW, rng, "Gs")
    Gs._state["components"]["synthesis"]._state["build_func_name"] = "G_synthesis_stylegan_revised"
    D = _net("D", "D_stylegan2", {k: KW[k] for k in D_KEYS}, make_d_vars(KW, rng))
    with _fake_dnnlib(), open(tmp_path / "revised.pkl", "wb") as f:
        pickle.dump((Gs, D, Gs), f, protocol=4)
    with pytest.raises(LegacyImportError, match=r"Gs/synthesis is G_synthesis_stylegan_revised \(StyleGAN2 "
                                                r"configs B–D"):
        load_pkl(tmp_path / "revised.pkl").infer_model()


def test_missing_variable_is_named(tmp_path):
    write_pkl(tmp_path / "missing.pkl", KW, edit=lambda _kw, syn: syn.pop("16x16/Conv1/noise_strength"))
    with pytest.raises(LegacyImportError, match=r"\(Gs\): missing synthesis/16x16/Conv1/noise_strength"):
        convert(load_pkl(tmp_path / "missing.pkl"))


@pytest.mark.slow
def test_transfer_source_may_be_a_stylegan2_pickle(tmp_path):
    """transfer.source=<.pkl>: the first fakes grid (at resume_kimg) is the pickle's Gs output on the grid
    latents."""
    from PIL import Image

    from stylegan_exp.grid import make_grid, to_uint8
    from stylegan_exp.train.loop import Trainer
    from stylegan_exp.train.stylegan2_steps import StyleGAN2Steps

    kw = dict(KW, resolution=16, fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16, mapping_layers=2,
              mapping_fmaps=16, mbstd_num_features=1)
    raw = write_pkl(tmp_path / "source.pkl", kw)
    cfg = to_object(compose_config(
        "train", "+experiment=tiny", "model=stylegan2", f"outputs_root={tmp_path / 'outputs'}",
        f"dataset.path={tmp_path / 'synthetic-16'}", "logger=none", "transfer=snapshot",
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
        f"dataset.path={tmp_path / 'synthetic-16'}", "transfer=snapshot",
        f"transfer.source={tmp_path / 'source.pkl'}")), tmp_path / "adopting")
    assert isinstance(adopting.cfg.model, StyleGAN2Config) and isinstance(adopting.steps, StyleGAN2Steps)
