"""Original StyleGAN networks for tests: (G, D, Gs) pickles written in the original format (as
`dnnlib.tflib.Network.__getstate__` does) with random weights under the original names, and an independent
NumPy (NCHW) re-implementation of G_style / G_synthesis / D_basic, written from `networks_stylegan.py`."""

from __future__ import annotations

import contextlib
import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np

from stylegan_exp.legacy import convert
from stylegan_exp.legacy.pickles import read_snapshot
from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.nets.weights import assign_weights

SQRT2 = math.sqrt(2.0)

# ---------------------------------------------------------------------------------------------------
# Writing pickles the way dnnlib.tflib.Network.__getstate__ does.


class _Network:
    """Pickles as `dnnlib.tflib.network.Network` with the original's state dict."""

    def __init__(self, state: dict) -> None:
        self._state = state

    def __getstate__(self) -> dict:
        return self._state


_Network.__module__ = "dnnlib.tflib.network"
_Network.__name__ = _Network.__qualname__ = "Network"


@contextlib.contextmanager
def fake_dnnlib():
    """`dnnlib.tflib.network` in sys.modules only while pickling."""
    names = ["dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = types.ModuleType(n)
    sys.modules["dnnlib.tflib.network"].Network = _Network
    try:
        yield
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


def tflib_network(name: str, func: str, kwargs: dict, variables: dict,
                  components: dict | None = None) -> _Network:
    return _Network({
        "version": 3, "name": name, "static_kwargs": dict(kwargs), "components": dict(components or {}),
        "build_module_src": "# networks_stylegan.py source\n", "build_func_name": func,
        "variables": list(variables.items()),
    })


# ---------------------------------------------------------------------------------------------------
# Random weights with the original names and NCHW shapes.


def _nf(kw: dict):
    return lambda s: min(int(kw["fmap_base"] / (2.0 ** (s * kw["fmap_decay"]))), kw["fmap_max"])


def make_g_vars(kw: dict, rng: np.random.Generator) -> tuple[dict, dict, dict]:
    """(G_style own, G_mapping, G_synthesis) variables."""
    nf, L = _nf(kw), int(math.log2(kw["resolution"]))
    lrmul, dl = kw["mapping_lrmul"], kw["dlatent_size"]
    def n(*shape, std=1.0):
        return (rng.standard_normal(shape) * std).astype(np.float32)
    own = {"lod": np.float32(0), "dlatent_avg": n(dl, std=0.3)}
    mapping = {}
    for i in range(kw["mapping_layers"]):
        fin = kw["latent_size"] if i == 0 else kw["mapping_fmaps"]
        fout = dl if i == kw["mapping_layers"] - 1 else kw["mapping_fmaps"]
        mapping[f"Dense{i}/weight"] = n(fin, fout, std=1 / lrmul)
        mapping[f"Dense{i}/bias"] = n(fout, std=0.2 / lrmul)
    syn = {"lod": np.float32(0)}
    if kw["use_noise"]:
        for i in range(2 * L - 2):
            r = 2 ** (i // 2 + 2)
            syn[f"noise{i}"] = n(1, 1, r, r)

    def epilogue(scope: str, c: int) -> None:
        if kw["use_noise"]:
            syn[f"{scope}/Noise/weight"] = n(c, std=0.3)
        syn[f"{scope}/bias"] = n(c, std=0.2)
        syn[f"{scope}/StyleMod/weight"] = n(dl, 2 * c)
        syn[f"{scope}/StyleMod/bias"] = n(2 * c, std=0.2)

    syn["4x4/Const/const"] = n(1, nf(1), 4, 4)
    epilogue("4x4/Const", nf(1))
    syn["4x4/Conv/weight"] = n(3, 3, nf(1), nf(1))
    epilogue("4x4/Conv", nf(1))
    for res in range(2, L + 1):
        r = 2**res
        if res > 2:
            syn[f"{r}x{r}/Conv0_up/weight"] = n(3, 3, nf(res - 2), nf(res - 1))
            epilogue(f"{r}x{r}/Conv0_up", nf(res - 1))
            syn[f"{r}x{r}/Conv1/weight"] = n(3, 3, nf(res - 1), nf(res - 1))
            epilogue(f"{r}x{r}/Conv1", nf(res - 1))
        syn[f"ToRGB_lod{L - res}/weight"] = n(1, 1, nf(res - 1), kw["num_channels"])
        syn[f"ToRGB_lod{L - res}/bias"] = n(kw["num_channels"], std=0.2)
    return own, mapping, syn


def make_d_vars(kw: dict, rng: np.random.Generator) -> dict:
    nf, L = _nf(kw), int(math.log2(kw["resolution"]))
    def n(*shape, std=1.0):
        return (rng.standard_normal(shape) * std).astype(np.float32)
    d = {"lod": np.float32(0)}
    for res in range(L, 1, -1):
        r = 2**res
        d[f"FromRGB_lod{L - res}/weight"] = n(1, 1, kw["num_channels"], nf(res - 1))
        d[f"FromRGB_lod{L - res}/bias"] = n(nf(res - 1), std=0.2)
        if res > 2:
            d[f"{r}x{r}/Conv0/weight"] = n(3, 3, nf(res - 1), nf(res - 1))
            d[f"{r}x{r}/Conv0/bias"] = n(nf(res - 1), std=0.2)
            d[f"{r}x{r}/Conv1_down/weight"] = n(3, 3, nf(res - 1), nf(res - 2))
            d[f"{r}x{r}/Conv1_down/bias"] = n(nf(res - 2), std=0.2)
    extra = kw["mbstd_num_features"] if kw["mbstd_group_size"] > 1 else 0
    d["4x4/Conv/weight"] = n(3, 3, nf(1) + extra, nf(1))
    d["4x4/Conv/bias"] = n(nf(1), std=0.2)
    d["4x4/Dense0/weight"] = n(nf(1) * 16, nf(0))
    d["4x4/Dense0/bias"] = n(nf(0), std=0.2)
    d["4x4/Dense1/weight"] = n(nf(0), 1)
    d["4x4/Dense1/bias"] = n(1, std=0.2)
    return d


G_KEYS = ("resolution", "num_channels", "fmap_base", "fmap_decay", "fmap_max", "latent_size", "dlatent_size",
          "mapping_layers", "mapping_fmaps", "mapping_lrmul", "use_noise", "fused_scale")
D_KEYS = ("resolution", "num_channels", "fmap_base", "fmap_decay", "fmap_max", "mbstd_group_size",
          "mbstd_num_features", "fused_scale")


def _g_network(kw: dict, rng: np.random.Generator, edit=None, lod: float = 0.0, extra: dict | None = None):
    own, mapping, syn = make_g_vars(kw, rng)
    own["lod"] = syn["lod"] = np.float32(lod)
    if edit:
        edit(syn)
    gkw = {**{k: kw[k] for k in G_KEYS}, **(extra or {})}
    mkw = {**gkw, "dlatent_broadcast": 2 * int(math.log2(kw["resolution"])) - 2}
    comps = {"synthesis": tflib_network("G_synthesis", "G_synthesis", gkw, syn),
             "mapping": tflib_network("G_mapping", "G_mapping", mkw, mapping)}
    return tflib_network("G", "G_style", gkw, own, comps), (own, mapping, syn)


def write_pkl(path: Path, kw: dict, seed: int = 0, edit=None, lod: float = 0.0,
              gs_kwargs: dict | None = None) -> dict:
    """An original-format (G, D, Gs) pickle, saved at `lod` as the original's training loop leaves it (G's and
    D's lod variables set, Gs's copied); `gs_kwargs` join Gs's static kwargs. Returns the raw Gs and D
    variables for the reference."""
    rng = np.random.default_rng(seed)
    G, _ = _g_network(kw, rng, lod=lod)
    Gs, gs_vars = _g_network(kw, rng, edit, lod, gs_kwargs)
    d_vars = make_d_vars(kw, rng)
    d_vars["lod"] = np.float32(lod)
    D = tflib_network("D", "D_basic", {k: kw[k] for k in D_KEYS}, d_vars)
    with fake_dnnlib(), open(path, "wb") as f:
        pickle.dump((G, D, Gs), f, protocol=4)
    return {"Gs": gs_vars, "D": d_vars}


# ---------------------------------------------------------------------------------------------------
# NumPy reference of the original networks (NCHW), written from networks_stylegan.py.


def lrelu(x):
    return np.maximum(x, 0.2 * x)


def he(w, gain=SQRT2, lrmul=1.0):
    return w * (gain / np.sqrt(np.prod(w.shape[:-1])) * lrmul)


def conv2d(x, w):
    k, (n, _, h, wd) = w.shape[0], x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (k // 2, k // 2), (k // 2, k // 2)))
    out = np.zeros((n, w.shape[3], h, wd), np.float64)
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("nchw,co->nohw", xp[:, :, dy : dy + h, dx : dx + wd], w[dy, dx])
    return out


def padded_sum(w):
    p = np.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    return p[1:, 1:] + p[:-1, 1:] + p[1:, :-1] + p[:-1, :-1]


def upscale2d_conv2d_fused(x, w):
    """tf.nn.conv2d_transpose(stride 2, SAME) with the summed, transposed 4×4 kernel."""
    wt = padded_sum(np.transpose(w, (0, 1, 3, 2)))  # [4, 4, out, in]
    n, _, h, wd = x.shape
    full = np.zeros((n, wt.shape[2], 2 * h + 2, 2 * wd + 2))
    for ky in range(4):
        for kx in range(4):
            full[:, :, ky : ky + 2 * h : 2, kx : kx + 2 * wd : 2] += np.einsum("nihw,oi->nohw", x, wt[ky, kx])
    return full[:, :, 1 : 1 + 2 * h, 1 : 1 + 2 * wd]  # SAME: pad_before = 1


def conv2d_downscale2d_fused(x, w):
    wd4 = padded_sum(w) * 0.25
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[3], h // 2, wd // 2))
    for ky in range(4):
        for kx in range(4):
            out += np.einsum("nihw,io->nohw", xp[:, :, ky : ky + h : 2, kx : kx + wd : 2], wd4[ky, kx])
    return out


def blur(x):
    f = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    h, w = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(f[dy, dx] * xp[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3))


def upscale2d(x):
    return x.repeat(2, axis=2).repeat(2, axis=3)


def downscale2d(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def instance_norm(x):
    x = x - x.mean(axis=(2, 3), keepdims=True)
    return x / np.sqrt((x**2).mean(axis=(2, 3), keepdims=True) + 1e-8)


def lerp_clip(a, b, t):
    return a + (b - a) * np.clip(t, 0.0, 1.0)


def ref_g_style(gv, kw, z, psi, cutoff, lod=0.0):
    """G_style with randomize_noise=False, the linear structure (equal to recursive at any lod)."""
    own, mapping, syn = gv
    L = int(math.log2(kw["resolution"]))
    num_layers, lrmul = 2 * L - 2, kw["mapping_lrmul"]
    x = z.astype(np.float64)
    x = x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-8)
    for i in range(kw["mapping_layers"]):
        x = lrelu(x @ he(mapping[f"Dense{i}/weight"], lrmul=lrmul) + mapping[f"Dense{i}/bias"] * lrmul)
    dl = np.tile(x[:, None], [1, num_layers, 1])
    coefs = np.where(np.arange(num_layers)[None, :, None] < cutoff, psi, 1.0)
    dl = own["dlatent_avg"] + (dl - own["dlatent_avg"]) * coefs

    def epi(x, idx, scope):
        if kw["use_noise"]:
            x = x + syn[f"noise{idx}"] * syn[f"{scope}/Noise/weight"][None, :, None, None]
        x = lrelu(x + syn[f"{scope}/bias"][None, :, None, None])
        x = instance_norm(x)
        style = dl[:, idx] @ he(syn[f"{scope}/StyleMod/weight"], gain=1.0) + syn[f"{scope}/StyleMod/bias"]
        style = style.reshape(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]

    def torgb(res, x):
        name = f"ToRGB_lod{L - res}"
        return conv2d(x, he(syn[f"{name}/weight"], gain=1.0)) + syn[f"{name}/bias"][None, :, None, None]

    fused = {"auto": lambda r: r >= 128, True: lambda r: True, False: lambda r: False}[kw["fused_scale"]]
    x = np.tile(syn["4x4/Const/const"], [len(z), 1, 1, 1])
    x = epi(x, 0, "4x4/Const")
    x = epi(conv2d(x, he(syn["4x4/Conv/weight"])), 1, "4x4/Conv")
    images = torgb(2, x)
    for res in range(3, L + 1):
        r = 2**res
        w = he(syn[f"{r}x{r}/Conv0_up/weight"])
        x = upscale2d_conv2d_fused(x, w) if fused(r) else conv2d(upscale2d(x), w)
        x = epi(blur(x), 2 * res - 4, f"{r}x{r}/Conv0_up")
        x = epi(conv2d(x, he(syn[f"{r}x{r}/Conv1/weight"])), 2 * res - 3, f"{r}x{r}/Conv1")
        images = lerp_clip(torgb(res, x), upscale2d(images), lod - (L - res))
    return images


def ref_d_basic(d, kw, images, lod=0.0):
    L = int(math.log2(kw["resolution"]))
    fused = {"auto": lambda r: r >= 128, True: lambda r: True, False: lambda r: False}[kw["fused_scale"]]

    def bias(x, name):
        b = d[f"{name}/bias"]
        return x + (b if x.ndim == 2 else b[None, :, None, None])

    def fromrgb(x, res):
        name = f"FromRGB_lod{L - res}"
        return lrelu(bias(conv2d(x, he(d[f"{name}/weight"])), name))

    def block(x, res):
        r = 2**res
        if res >= 3:
            x = lrelu(bias(conv2d(x, he(d[f"{r}x{r}/Conv0/weight"])), f"{r}x{r}/Conv0"))
            w = he(d[f"{r}x{r}/Conv1_down/weight"])
            x = blur(x)
            x = conv2d_downscale2d_fused(x, w) if fused(r) else downscale2d(conv2d(x, w))
            return lrelu(bias(x, f"{r}x{r}/Conv1_down"))
        if kw["mbstd_group_size"] > 1:
            g, nfeat = min(kw["mbstd_group_size"], len(x)), kw["mbstd_num_features"]
            n, c, h, w = x.shape
            y = x.reshape(g, -1, nfeat, c // nfeat, h, w)
            y = np.sqrt(((y - y.mean(axis=0, keepdims=True)) ** 2).mean(axis=0) + 1e-8)
            y = y.mean(axis=(2, 3, 4))[:, :, None, None]
            x = np.concatenate([x, np.tile(y, [g, 1, h, w])], axis=1)
        x = lrelu(bias(conv2d(x, he(d["4x4/Conv/weight"])), "4x4/Conv"))
        x = lrelu(bias(x.reshape(len(x), -1) @ he(d["4x4/Dense0/weight"]), "4x4/Dense0"))
        return bias(x @ he(d["4x4/Dense1/weight"], gain=1.0), "4x4/Dense1")

    img = images.astype(np.float64)
    x = fromrgb(img, L)
    for res in range(L, 2, -1):
        x = block(x, res)
        img = downscale2d(img)
        x = lerp_clip(x, fromrgb(img, res - 1), lod - (L - res))
    return block(x, 2)[:, 0]


# ---------------------------------------------------------------------------------------------------
# Test models.

BASE = dict(num_channels=3, fmap_decay=1.0, latent_size=16, dlatent_size=12, mapping_layers=3,
            mapping_fmaps=10, mapping_lrmul=0.01, use_noise=True, fused_scale="auto", mbstd_group_size=4,
            mbstd_num_features=2)
MODELS = {
    "res32": dict(BASE, resolution=32, fmap_base=128, fmap_max=16),
    "res128_fused": dict(BASE, resolution=128, fmap_base=64, fmap_max=8),
    "res16_allfused_nonoise": dict(BASE, resolution=16, fmap_base=64, fmap_decay=0.5, fmap_max=16,
                                   num_channels=1, use_noise=False, fused_scale=True, mapping_lrmul=0.1,
                                   mbstd_group_size=0, mapping_layers=2),
}


def our_nets(path: Path):
    """The pickle read by `legacy`: (LegacySnapshot, converted weights, our Gs, our D)."""
    snap = read_snapshot(path)
    weights = convert(snap)
    model, res, ch = snap.infer_model(), snap.resolution, snap.num_channels
    Gs, D = build_generator(model, res, ch), build_discriminator(model, res, ch)
    assign_weights(Gs, weights["Gs"], "Gs")
    assign_weights(D, weights["D"], "D")
    return snap, weights, Gs, D

