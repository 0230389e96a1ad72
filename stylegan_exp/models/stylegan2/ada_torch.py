"""stylegan2-ada-pytorch network pickles (`training.networks`: Generator = MappingNetwork + SynthesisNetwork
of SynthesisBlocks, Discriminator) → our StyleGAN2, read by `legacy.torch_pickles` without torch.

The networks are stylegan2-ada's (see `ada_tf`) with PyTorch layouts: conv weights [out, in, k, k] (ours
[k, k, in, out]), dense weights [out, in], the affine (style) bias initialised at 1 where ours adds the 1 at
run time, per-layer `noise_const` buffers, `channel_base` = 2 × fmap_base. Weights are stored unscaled with
their gain applied at run time, as ours. The upsampling convolutions run as true convolutions
(flip_weight=False), so their kernels are flipped here. G_ema becomes Gs. A conditional model (`c_dim` > 0)
maps onto ours: G's `mapping.embed` is our mapping's embedding, D's MappingNetwork (z_dim 0: `embed` and its
own `num_layers` fc layers, 8 by default) is D's label mapping and the epilogue's `out` gives the cmap
features. Other activations, a whole-minibatch mbstd group, and a clamped skip D (whose 4×4 fromRGB the
original leaves unclamped) are refused in one line naming the setting.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from stylegan_exp.config import typed_model
from stylegan_exp.legacy.pickles import LegacyImportError
from stylegan_exp.legacy.tables import Table, dense0_rows_nhwc, same, times_sqrt2
from stylegan_exp.legacy.torch_pickles import TORCH, TorchSnapshot
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology

FORMAT = TORCH
KEYS = {"Generator/SynthesisNetwork/SynthesisBlock"}  # G_ema / its synthesis network / the 4×4 block


class _FilterBuffers:
    """The FIR filter buffers (`*.resample_filter`): rebuilt from the `resample_filter` kwarg, checked in
    `infer_model`, not weights."""

    def __contains__(self, name: object) -> bool:
        return str(name).endswith("resample_filter")


IGNORED = _FilterBuffers()
_CLASSES = {"G": "Generator", "Gs": "Generator", "D": "Discriminator"}
_ARCHITECTURES = (Topology.orig, Topology.skip, Topology.resnet)
# init kwargs read below or not changing the float32 function (fp16 settings, Freeze-D), per network part;
# any other is refused. Values other than these defaults are refused too.
_KNOWN = {
    "G": {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"},
    "G.mapping_kwargs": {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier",
                         "w_avg_beta"},
    "G.synthesis_kwargs": {"channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                           "resample_filter", "use_noise", "activation", "fp16_channels_last", "kernel_size"},
    "D": {"c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
          "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs"},
    "D.block_kwargs": {"activation", "resample_filter", "freeze_layers", "fp16_channels_last"},
    "D.mapping_kwargs": {"num_layers", "embed_features", "layer_features", "activation", "lr_multiplier"},
    "D.epilogue_kwargs": {"mbstd_group_size", "mbstd_num_channels", "activation"},
}
_REQUIRED = {"activation": "lrelu", "use_noise": True, "kernel_size": 3}


def _refuse(snap: TorchSnapshot, message: str) -> LegacyImportError:
    return LegacyImportError(f"{snap.source}: {message}")


def resolution(snap: TorchSnapshot) -> int:
    res = int(snap.Gs.init_kwargs.get("img_resolution", 0))
    if res < 4 or res & (res - 1) or f"b{res}" not in snap.Gs.children["synthesis"].children:
        raise _refuse(snap, f"G_ema has img_resolution={res!r} but no synthesis block b{res}")
    return res


def num_channels(snap: TorchSnapshot) -> int:
    return int(snap.Gs.init_kwargs.get("img_channels", 3))


def lod(snap: TorchSnapshot) -> float:
    return 0.0


def _check_kwargs(snap: TorchSnapshot, net: str, kwargs: dict[str, Any]) -> None:
    """Unknown keys and unsupported values of one network's init kwargs (and its nested kwargs dicts)."""
    for part, known in _KNOWN.items():
        if part.split(".")[0] != net:
            continue
        values = kwargs if "." not in part else dict(kwargs.get(part.split(".")[1]) or {})
        where = f"{'G_ema' if net == 'G' else net} {part.partition('.')[2] or 'init'} kwargs"
        bad = sorted(set(values) - known)
        bad += [k for k, v in _REQUIRED.items() if k in values and values[k] != v]
        if bad:
            raise _refuse(snap, f"unsupported {where} {', '.join(f'{k}={values[k]!r}' for k in bad)}")


def _filter(kernel: Any) -> list[int]:
    return [int(v) for v in np.asarray([1, 3, 3, 1] if kernel is None else kernel).ravel()]


def infer_model(snap: TorchSnapshot) -> StyleGAN2Config:
    """Our StyleGAN2 config for G_ema's and D's init kwargs (stylegan2-ada-pytorch's defaults where
    absent)."""
    for key, want in _CLASSES.items():
        if getattr(snap, key).class_name != want:
            raise _refuse(snap, f"{key} is {getattr(snap, key).class_name}, not stylegan2-ada-pytorch's "
                                f"{want}")
    g, d = snap.Gs.init_kwargs, snap.D.init_kwargs
    sizes = {"G_ema": int(g.get("c_dim") or 0), "G": int(snap.G.init_kwargs.get("c_dim") or 0),
             "D": int(d.get("c_dim") or 0)}
    if len(set(sizes.values())) > 1:
        net = max(sizes, key=sizes.__getitem__)
        others = ", ".join(f"{k} c_dim={v}" for k, v in sizes.items() if v != sizes[net])
        raise _refuse(snap, f"{net} is conditional (c_dim={sizes[net]}) but {others}: a conditional pickle "
                            "has one label size")
    _check_kwargs(snap, "G", g)
    _check_kwargs(snap, "D", d)
    mapping, synthesis = dict(g.get("mapping_kwargs") or {}), dict(g.get("synthesis_kwargs") or {})
    blocks, epilogue = dict(d.get("block_kwargs") or {}), dict(d.get("epilogue_kwargs") or {})
    shared = {"channel_base": (synthesis.get("channel_base", 32768), d.get("channel_base", 32768)),
              "channel_max": (synthesis.get("channel_max", 512), d.get("channel_max", 512)),
              "conv_clamp": (synthesis.get("conv_clamp"), d.get("conv_clamp")),
              "resample_filter": (_filter(synthesis.get("resample_filter")),
                                  _filter(blocks.get("resample_filter")))}
    differ = [k for k, (a, b) in shared.items() if a != b]
    if differ:
        raise _refuse(snap, f"G_ema and D differ in {', '.join(differ)} (unsupported)")
    base, clamp = int(shared["channel_base"][0]), shared["conv_clamp"][0]
    if base % 2:
        raise _refuse(snap, f"unsupported channel_base={base} (odd: no fmap_base = channel_base / 2)")
    d_arch = d.get("architecture", "resnet")
    if d_arch == "skip" and clamp is not None:
        raise _refuse(snap, f"unsupported D setting architecture='skip' with conv_clamp={clamp} (the "
                            "original leaves the 4x4 fromRGB unclamped)")
    group, mbstd = epilogue.get("mbstd_group_size", 4), int(epilogue.get("mbstd_num_channels", 1))
    if group is None and mbstd > 0:
        raise _refuse(snap, "unsupported D setting mbstd_group_size=None (one group of the whole minibatch)")
    w_dim = int(g.get("w_dim", 512))
    beta = mapping.get("w_avg_beta", 0.995)
    model = typed_model(StyleGAN2Config, {
        "name": "stylegan2-ada-pytorch-pkl",
        "fmap_base": base // 2, "fmap_max": int(shared["channel_max"][0]), "fmap_decay": 1.0, "fmap_min": 1,
        "latent_size": int(g.get("z_dim", 512)), "dlatent_size": w_dim,
        "mapping_layers": int(mapping.get("num_layers", 8)),
        "mapping_fmaps": int(mapping.get("layer_features") or w_dim),
        "mapping_lrmul": float(mapping.get("lr_multiplier", 0.01)),
        "g_architecture": _architecture(snap, "G_ema", synthesis.get("architecture", "skip")),
        "d_architecture": _architecture(snap, "D", d_arch),
        "resample_kernel": shared["resample_filter"][0],
        "conv_clamp": None if clamp is None else float(clamp),
        "dlatent_avg_beta": 1.0 if beta is None else float(beta),
        "truncation_psi": 1.0,  # generate.py's default (the TF code's G_main had 0.5)
        "truncation_cutoff": None,
        "mbstd_group_size": int(group) if mbstd > 0 else 0,
        "mbstd_num_features": max(mbstd, 1),
    })
    _check_filters(snap, model.resample_kernel)
    return replace(model, **_labels(snap, mapping, d, model.nf(0))) if c_dim(snap) else model


def c_dim(snap: TorchSnapshot) -> int:
    """The label size of a conditional pickle (0: unconditional)."""
    return int(snap.Gs.init_kwargs.get("c_dim") or 0)


def _labels(snap: TorchSnapshot, mapping: dict[str, Any], d: dict[str, Any], nf0: int) -> dict[str, Any]:
    """A conditional pickle's label settings as ours (D's label mapping layers), after refusing embedding
    widths ours does not have: G's embedding is w_dim wide, D's cmap (and its mapping) nf(0)."""
    w_dim = int(snap.Gs.init_kwargs.get("w_dim", 512))
    if mapping.get("embed_features") not in (None, w_dim):
        raise _refuse(snap, f"unsupported G_ema mapping_kwargs embed_features={mapping['embed_features']} "
                            f"(only w_dim = {w_dim})")
    d_map = dict(d.get("mapping_kwargs") or {})
    channels_4x4 = min(int(d.get("channel_base", 32768)) // 4, int(d.get("channel_max", 512)))
    widths = {"cmap_dim": d.get("cmap_dim") or channels_4x4,
              "mapping_kwargs embed_features": d_map.get("embed_features") or nf0,
              "mapping_kwargs layer_features": d_map.get("layer_features") or nf0}
    bad = [f"{k}={v}" for k, v in widths.items() if int(v) != nf0]
    if bad:
        raise _refuse(snap, f"unsupported D settings {', '.join(bad)} (the label mapping's width; only "
                            f"{nf0}, the output layer's input)")
    return {"conditional": True, "label_mapping_layers": int(d_map.get("num_layers", 8)),
            "label_mapping_lrmul": float(d_map.get("lr_multiplier", 0.01))}


def _architecture(snap: TorchSnapshot, net: str, value: Any) -> Topology:
    if value not in [a.value for a in _ARCHITECTURES]:
        raise _refuse(snap, f"unsupported {net} setting architecture={value!r} (supported: orig, skip, "
                            "resnet)")
    return Topology(value)


def _check_filters(snap: TorchSnapshot, kernel: list[int]) -> None:
    """The pickled filter buffers are the kwarg's normalized outer product (what our resampling uses)."""
    k = np.asarray(kernel, np.float64)
    want = np.outer(k, k) / np.outer(k, k).sum()
    for key in ("Gs", "D"):
        for name, value in getattr(snap, key).all_variables().items():
            if name in IGNORED and (value.shape != want.shape or np.abs(value - want).max() > 1e-6):
                raise _refuse(snap, f"{key} buffer {name} is not resample_filter={kernel} (unsupported)")


def _oihw(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))


def _oihw_flipped(w: np.ndarray) -> np.ndarray:
    """An upsampling conv's kernel: run by the original as a true convolution, by ours as a correlation."""
    return np.transpose(w, (2, 3, 1, 0))[::-1, ::-1]


def _transpose(w: np.ndarray) -> np.ndarray:
    return np.transpose(w)


def _minus_one(b: np.ndarray) -> np.ndarray:
    return b - 1.0


def _const(c: np.ndarray) -> np.ndarray:
    return np.transpose(c, (1, 2, 0))[None]


def _noise(n: np.ndarray) -> np.ndarray:
    return n[None, :, :, None]


def _layer(table: Table, prefix: str, ours: str, *, modulated: bool = True, noise: bool = False,
           bias: bool = True, flip: bool = False) -> None:
    table[f"{prefix}.weight"] = (f"{ours}/weight", _oihw_flipped if flip else _oihw)
    if modulated:
        table[f"{prefix}.affine.weight"] = (f"{ours}/style/weight", _transpose)
        table[f"{prefix}.affine.bias"] = (f"{ours}/style/bias", _minus_one)
    if noise:
        table[f"{prefix}.noise_strength"] = (f"{ours}/noise/weight", same)
        table[f"{prefix}.noise_const"] = (f"{ours}/noise/noise", _noise)
    if bias:
        table[f"{prefix}.bias"] = (f"{ours}/bias", same)


def _generator_table(model: StyleGAN2Config, res: int) -> Table:
    table: Table = {"mapping.w_avg": ("w_avg", same)}
    for i in range(model.mapping_layers):
        table[f"mapping.fc{i}.weight"] = (f"mapping/dense/{i}/weight", _transpose)
        table[f"mapping.fc{i}.bias"] = (f"mapping/dense/{i}/bias", same)
    arch = Topology(model.g_architecture)
    for level in range(2, int(math.log2(res)) + 1):
        prefix, ours = f"synthesis.b{2**level}", f"synthesis/blocks/{level - 2}"
        if level == 2:
            table[f"{prefix}.const"] = (f"{ours}/const", _const)
            _layer(table, f"{prefix}.conv1", f"{ours}/conv", noise=True)
        else:
            _layer(table, f"{prefix}.conv0", f"{ours}/conv0", noise=True, flip=True)
            _layer(table, f"{prefix}.conv1", f"{ours}/conv1", noise=True)
            if arch == Topology.resnet:
                table[f"{prefix}.skip.weight"] = (f"{ours}/skip/weight", _oihw_flipped)
        if arch == Topology.skip or 2**level == res:
            _layer(table, f"{prefix}.torgb", f"{ours}/torgb")
    return table


def _discriminator_table(model: StyleGAN2Config, res: int) -> Table:
    arch = Topology(model.d_architecture)
    table: Table = {}
    for level in range(3, int(math.log2(res)) + 1):
        prefix, ours = f"b{2**level}", f"blocks/{level - 2}"
        if arch == Topology.skip or 2**level == res:
            _layer(table, f"{prefix}.fromrgb", f"{ours}/fromrgb", modulated=False)
        _layer(table, f"{prefix}.conv0", f"{ours}/conv0", modulated=False)
        _layer(table, f"{prefix}.conv1", f"{ours}/conv1", modulated=False)
        if arch == Topology.resnet:
            _layer(table, f"{prefix}.skip", f"{ours}/skip", modulated=False, bias=False)
    if arch == Topology.skip:
        _layer(table, "b4.fromrgb", "blocks/0/fromrgb", modulated=False)
    _layer(table, "b4.conv", "blocks/0/conv", modulated=False)
    table["b4.fc.weight"] = ("blocks/0/dense0/weight", lambda w: dense0_rows_nhwc(np.transpose(w)))
    table["b4.fc.bias"] = ("blocks/0/dense0/bias", same)
    table["b4.out.weight"] = ("blocks/0/output/weight", _transpose)
    table["b4.out.bias"] = ("blocks/0/output/bias", same)
    return table


def _label_tables(model: StyleGAN2Config) -> tuple[Table, Table]:
    """A conditional pickle's label layers: G's embedding, D's label mapping (embedding and fc layers)."""
    g = {"mapping.embed.weight": ("mapping/embed/weight", _transpose),
         "mapping.embed.bias": ("mapping/embed/bias", same)}
    d = {"mapping.embed.weight": ("label_mapping/embed/weight", _transpose),
         "mapping.embed.bias": ("label_mapping/embed/bias", same)}
    for i in range(int(model.label_mapping_layers or 0)):
        d[f"mapping.fc{i}.weight"] = (f"label_mapping/dense/{i}/weight", _transpose)
        d[f"mapping.fc{i}.bias"] = (f"label_mapping/dense/{i}/bias", times_sqrt2)
    return g, d


def tables(snap: TorchSnapshot, model: StyleGAN2Config) -> dict[str, Table]:
    """PyTorch parameter/buffer name → (our path, transform), for each of G, D and Gs (= G_ema)."""
    res = resolution(snap)
    g_table, d_table = _generator_table(model, res), _discriminator_table(model, res)
    if c_dim(snap):
        g_labels, d_labels = _label_tables(model)
        g_table, d_table = {**g_table, **g_labels}, {**d_table, **d_labels}
    return {"G": g_table, "D": d_table, "Gs": g_table}
