"""Original StyleGAN2 networks for tests: (G, D, Gs) pickles in the original format (G_main = G_mapping +
G_synthesis_stylegan2, D_stylegan2) with random weights under the original names, and an independent NumPy
(NCHW) re-implementation of the original forward pass (fused modulated convolutions, upfirdn2d with [1,3,3,1],
skip/resnet G and D), written from `networks_stylegan2.py` and `upfirdn_2d.py`."""

from __future__ import annotations

import math
import pickle

import numpy as np
from original_stylegan import conv2d, fake_dnnlib, tflib_network

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


def g_network(kw: dict, rng: np.random.Generator, name: str, edit=None, extra: dict | None = None):
    own, mapping, syn = make_g_vars(kw, rng)
    gkw = {**{k: kw[k] for k in G_KEYS}, "architecture": kw["g_arch"], **(extra or {})}
    if edit:
        edit(gkw, syn)
    mkw = {**gkw, "dlatent_broadcast": 2 * int(math.log2(kw["resolution"])) - 2}
    comps = {"synthesis": tflib_network("G_synthesis", "G_synthesis_stylegan2", gkw, syn),
             "mapping": tflib_network("G_mapping", "G_mapping", mkw, mapping)}
    return tflib_network(name, "G_main", gkw, own, comps), (own, mapping, syn)


def write_pkl(path, kw: dict, seed: int = 0, edit=None, d_edit=None, d_func: str = "D_stylegan2") -> dict:
    """An original-format StyleGAN2 (G, D, Gs) pickle; returns the raw Gs and D variables. `edit(kwargs,
    synthesis_vars)` / `d_edit(kwargs, vars)` change Gs / D before pickling."""
    rng = np.random.default_rng(seed)
    G, _ = g_network(kw, rng, "G")
    Gs, gs_vars = g_network(kw, rng, "Gs", edit)
    d_vars = make_d_vars(kw, rng)
    dkw = {**{k: kw[k] for k in D_KEYS}, "architecture": kw["d_arch"]}
    if d_edit:
        d_edit(dkw, d_vars)
    D = tflib_network("D", d_func, dkw, d_vars)
    with fake_dnnlib(), open(path, "wb") as f:
        pickle.dump((G, D, Gs), f, protocol=4)
    return {"Gs": gs_vars, "D": d_vars}


# ---------------------------------------------------------------------------------------------------
# NumPy reference of the original networks (NCHW), written from networks_stylegan2.py and upfirdn_2d.py.


def lrelu_gain(x):
    return np.maximum(x, 0.2 * x) * SQRT2


def clamp(x, limit):
    """stylegan2-ada's fused_bias_act clamp (after bias, activation and gain); None: StyleGAN2, no clamp."""
    return x if limit is None else np.clip(x, -limit, limit)


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


def ref_g_main(gv, kw, z, psi, cutoff=None, w=None):
    """G_main with randomize_noise=False: ψ on the layers below `cutoff`, on every layer when None (G_main's
    default; G_style instead disables truncation for None). `w`: the mapping's output when given (a
    conditional mapping's)."""
    own, mapping, syn = gv
    L, arch = int(math.log2(kw["resolution"])), kw["g_arch"]
    num_layers = 2 * L - 2
    dl = np.tile((ref_mapping(mapping, kw, z) if w is None else w)[:, None], [1, num_layers, 1])
    layer_psi = np.full([1, num_layers, 1], psi) if cutoff is None else np.where(
        np.arange(num_layers)[None, :, None] < cutoff, psi, 1.0)
    dl = own["dlatent_avg"] + (dl - own["dlatent_avg"]) * layer_psi

    def layer(x, idx, scope, up=False):
        x = modulated_conv(x, dl[:, idx], syn, scope, up=up)
        x = x + syn[f"noise{idx}"] * syn[f"{scope}/noise_strength"]
        return clamp(lrelu_gain(x + syn[f"{scope}/bias"][None, :, None, None]), kw.get("conv_clamp"))

    def torgb(x, y, res):
        scope = f"{2**res}x{2**res}/ToRGB"
        t = modulated_conv(x, dl[:, res * 2 - 3], syn, scope, demodulate=False)
        t = clamp(t + syn[f"{scope}/bias"][None, :, None, None], kw.get("conv_clamp"))
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


def ref_d_stylegan2(d, kw, images, cmap=None):
    """Scores of D_stylegan2 (D_main), projected on the labels' `cmap` [N, dim] for a conditional D."""
    L, arch = int(math.log2(kw["resolution"])), kw["d_arch"]

    def conv_layer(x, scope, act=True, down=False):
        w = he(d[f"{scope}/weight"])
        x = conv_downsample_2d(x, w) if down else conv2d(x, w)
        if f"{scope}/bias" in d:
            x = x + d[f"{scope}/bias"][None, :, None, None]
        return clamp(lrelu_gain(x), kw.get("conv_clamp")) if act else x

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
    out = x @ he(d["Output/weight"]) + d["Output/bias"]
    return out[:, 0] if cmap is None else (out * cmap).sum(axis=1) / np.sqrt(cmap.shape[1])


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

