"""stylegan3 PyTorch network pickles (NVlabs/stylegan3 `training/networks_stylegan3.py`: Generator =
MappingNetwork + SynthesisNetwork of a SynthesisInput and layers `L<idx>_<size>_<channels>`; the D of
`networks_stylegan2`, resnet) → our StyleGAN3, read by `legacy.torch_pickles` without torch.

Sizes come from the init kwargs (the Generator's are flat: its synthesis kwargs sit beside z_dim and
mapping_kwargs); config R is conv_kernel 1 with radial filters, G's channel_base/max an integer multiple
(`channel_scale`) of D's. Our layers design their filters from the config instead of storing them, so every
pickled up/down filter, and every layer's recorded layout (sampling rates, cutoffs, sizes, channels), is
checked against ours and a difference refused in one line naming the layer. Layouts: dense [out, in] →
[in, out], convolutions [out, in, k, k] → [k, k, in, out] (both sides correlate: no flip), D's fc rows in NHWC
order; affine biases are stored with their initial 1s, as ours. fp16 layers run in float32; the magnitude
EMA's decay (`magnitude_ema_beta`) and Freeze-D are training settings a run sets itself. Conditional models
(`c_dim` > 0) and settings ours lack are refused in one line naming the setting.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stylegan_exp.config import typed_model
from stylegan_exp.legacy.pickles import LegacyImportError
from stylegan_exp.legacy.tables import Table, dense0_rows_nhwc, same
from stylegan_exp.legacy.torch_pickles import TORCH, TorchModule, TorchSnapshot
from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.models.stylegan3.filters import design_lowpass
from stylegan_exp.models.stylegan3.generator import layout_of
from stylegan_exp.models.stylegan3.layout import LayerSpec

FORMAT = TORCH
KEYS = {"Generator/SynthesisNetwork/SynthesisInput"}  # G_ema / its synthesis network / the Fourier input


class _FilterBuffers:
    """The filter buffers (`up_filter`, `down_filter`, D's `resample_filter`): designed by our layers from the
    config, checked in `infer_model`, not weights."""

    def __contains__(self, name: object) -> bool:
        return str(name).endswith(("up_filter", "down_filter", "resample_filter"))


IGNORED = _FilterBuffers()
# The original's defaults of every setting read from the Generator's init kwargs (its SynthesisNetwork's and
# SynthesisLayer's), its mapping_kwargs and the D's; keys known but not changing the float32 function.
_SYNTHESIS = {"channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2,
              "first_cutoff": 2.0, "first_stopband": 2**2.1, "last_stopband_rel": 2**0.3, "margin_size": 10,
              "output_scale": 0.25, "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2,
              "use_radial_filters": False, "conv_clamp": 256}
_MAPPING = {"num_layers": 2, "lr_multiplier": 0.01, "w_avg_beta": 0.998}
_D = {"architecture": "resnet", "channel_base": 32768, "channel_max": 512, "conv_clamp": 256}
_KNOWN = {
    "G_ema": {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "num_fp16_res",
              "magnitude_ema_beta", *_SYNTHESIS},
    "G_ema mapping_kwargs": {"freeze_layers", "freeze_embed", *_MAPPING},
    "D": {"c_dim", "img_resolution", "img_channels", "num_fp16_res", "cmap_dim", "block_kwargs",
          "mapping_kwargs", "epilogue_kwargs", *_D},
    "D block_kwargs": {"activation", "resample_filter", "freeze_layers", "fp16_channels_last"},
    "D epilogue_kwargs": {"mbstd_group_size", "mbstd_num_channels", "activation"},
}
_CLASSES = {"G": "Generator", "Gs": "Generator", "D": "Discriminator"}
_NAMES = {"G": "G", "Gs": "G_ema", "D": "D"}
# A layer's recorded layout, compared with ours (floats to rounding)
_LAYER_KWARGS = {"is_torgb": "is_torgb", "is_critically_sampled": "critical", "in_channels": "in_channels",
                 "out_channels": "out_channels", "in_size": "in_size", "out_size": "out_size",
                 "in_sampling_rate": "in_sampling_rate", "out_sampling_rate": "out_sampling_rate",
                 "in_cutoff": "in_cutoff", "out_cutoff": "out_cutoff", "in_half_width": "in_half_width",
                 "out_half_width": "out_half_width"}
_FILTER_TOLERANCE = 1e-6  # float32 rounding of the same taps (SciPy's firwin/j1 vs ours)


def _refuse(snap: TorchSnapshot, message: str) -> LegacyImportError:
    return LegacyImportError(f"{snap.source}: {message}")


def resolution(snap: TorchSnapshot) -> int:
    res = snap.Gs.init_kwargs.get("img_resolution")
    if not isinstance(res, int | np.integer) or res < 8 or res & (res - 1):
        raise _refuse(snap, f"unsupported G_ema img_resolution={res!r} (a power of two >= 8)")
    if snap.D.init_kwargs.get("img_resolution") != res:
        raise _refuse(snap, f"G_ema and D differ in img_resolution ({res}, "
                            f"{snap.D.init_kwargs.get('img_resolution')!r})")
    return int(res)


def num_channels(snap: TorchSnapshot) -> int:
    channels = int(snap.Gs.init_kwargs.get("img_channels", 3))
    if int(snap.D.init_kwargs.get("img_channels", 3)) != channels:
        raise _refuse(snap, "G_ema and D differ in img_channels")
    return channels


def lod(snap: TorchSnapshot) -> float:
    return 0.0


def _plain(value: Any) -> Any:
    """NumPy scalars (as the original's kwargs computed from arrays pickle) as Python values."""
    return value.item() if isinstance(value, np.generic) else value


def _settings(values: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k}={_plain(values[k])!r}" for k in keys)


def _check_known(snap: TorchSnapshot) -> None:
    g, d = snap.Gs.init_kwargs, snap.D.init_kwargs
    for where, known in _KNOWN.items():
        net, _, part = where.partition(" ")
        values = g if net == "G_ema" else d
        values = dict(values.get(part) or {}) if part else values
        bad = sorted(set(values) - known)
        bad += ["activation"] if values.get("activation", "lrelu") != "lrelu" else []
        if bad:
            raise _refuse(snap, f"unsupported {where} kwargs {_settings(values, bad)}")


def infer_model(snap: TorchSnapshot) -> StyleGAN3Config:
    """Our StyleGAN3 config for G_ema's and D's init kwargs (the original's defaults where absent), after
    checking that the pickled layers and filters are what it builds."""
    for key, want in _CLASSES.items():
        if getattr(snap, key).class_name != want:
            raise _refuse(snap, f"{_NAMES[key]} is {getattr(snap, key).class_name}, not stylegan3's {want}")
    g, d = snap.Gs.init_kwargs, snap.D.init_kwargs
    for net, kwargs in (("G_ema", g), ("D", d)):
        if int(kwargs.get("c_dim") or 0) > 0:
            raise _refuse(snap, f"{net} is conditional (c_dim={kwargs['c_dim']}): conditional StyleGAN3 "
                                "models are not supported yet")
    _check_known(snap)
    s = {k: _plain(g.get(k, v)) for k, v in _SYNTHESIS.items()}
    mapping = {k: _plain(dict(g.get("mapping_kwargs") or {}).get(k, v)) for k, v in _MAPPING.items()}
    dk = {k: _plain(d.get(k, v)) for k, v in _D.items()}
    if dk["architecture"] != "resnet":
        raise _refuse(snap, f"unsupported D setting architecture={dk['architecture']!r} (StyleGAN3's D is "
                            "resnet)")
    if s["conv_clamp"] != dk["conv_clamp"]:
        raise _refuse(snap, f"G_ema and D differ in conv_clamp ({s['conv_clamp']}, {dk['conv_clamp']}): "
                            "unsupported")
    scale = s["channel_base"] // dk["channel_base"] if dk["channel_base"] > 0 else 0
    if scale < 1 or (s["channel_base"], s["channel_max"]) != (dk["channel_base"] * scale,
                                                             dk["channel_max"] * scale):
        raise _refuse(snap, f"unsupported channel_base/channel_max: G_ema's ({s['channel_base']}, "
                            f"{s['channel_max']}) are not D's ({dk['channel_base']}, {dk['channel_max']}) "
                            "times one integer")
    epilogue = dict(d.get("epilogue_kwargs") or {})
    group, mbstd = epilogue.get("mbstd_group_size", 4), int(epilogue.get("mbstd_num_channels", 1))
    if group is None and mbstd > 0:
        raise _refuse(snap, "unsupported D setting mbstd_group_size=None (one group of the whole minibatch)")
    w_dim = int(g.get("w_dim", 512))
    beta = mapping["w_avg_beta"]
    radial = bool(s["use_radial_filters"])
    model = typed_model(StyleGAN3Config, {
        "name": "stylegan3-r-pkl" if radial or s["conv_kernel"] == 1 else "stylegan3-t-pkl",
        "latent_size": int(g.get("z_dim", 512)), "dlatent_size": w_dim, "mapping_fmaps": w_dim,
        "mapping_layers": int(mapping["num_layers"]), "mapping_lrmul": float(mapping["lr_multiplier"]),
        "cbase": int(dk["channel_base"]), "cmax": int(dk["channel_max"]), "channel_scale": int(scale),
        "num_layers": int(s["num_layers"]), "num_critical": int(s["num_critical"]),
        "first_cutoff": float(s["first_cutoff"]), "first_stopband": float(s["first_stopband"]),
        "last_stopband_rel": float(s["last_stopband_rel"]), "margin_size": int(s["margin_size"]),
        "output_scale": float(s["output_scale"]), "conv_kernel": int(s["conv_kernel"]),
        "filter_size": int(s["filter_size"]), "lrelu_upsampling": int(s["lrelu_upsampling"]),
        "use_radial_filters": radial,
        "conv_clamp": None if s["conv_clamp"] is None else float(s["conv_clamp"]),
        "dlatent_avg_beta": 1.0 if beta is None else float(beta),
        "truncation_psi": 1.0,  # gen_images.py's default
        "truncation_cutoff": None,
        "mbstd_group_size": int(group) if mbstd > 0 else 0,
        "mbstd_num_features": max(mbstd, 1),
        "blur_sigma": 10.0 if radial else 0.0,  # train.py's R (a run keeps its own when it continues)
        "blur_fade_kimg": 200.0 if radial else 0.0,
    })
    res, channels = resolution(snap), num_channels(snap)
    for key in ("G", "Gs"):
        _check_synthesis(snap, key, model, res, channels)
    _check_resample_filters(snap, dict(d.get("block_kwargs") or {}).get("resample_filter"))
    return model


def _differs(ours: Any, theirs: Any) -> bool:
    """A recorded kwarg against ours: floats to rounding (the original's are float64, as ours)."""
    theirs = _plain(theirs)
    if isinstance(ours, float) and isinstance(theirs, int | float) and not isinstance(theirs, bool):
        return not math.isclose(ours, float(theirs), rel_tol=1e-9, abs_tol=1e-12)
    return theirs != ours


def _filter_differs(ours: np.ndarray | None, theirs: np.ndarray | None) -> bool:
    if ours is None or theirs is None:
        return (ours is None) != (theirs is None)
    return ours.shape != theirs.shape or float(np.abs(ours - theirs).max()) > _FILTER_TOLERANCE


def _check_synthesis(snap: TorchSnapshot, key: str, model: StyleGAN3Config, res: int, channels: int) -> None:
    """The pickled input and layers are the ones our layout builds: names, recorded kwargs and filters."""
    net = getattr(snap, key).children.get("synthesis")
    first, specs = layout_of(model, res, channels)
    names = ["input", *(spec.name for spec in specs)]
    if net is None or list(net.children) != names:
        found = list(net.children) if net is not None else []
        raise _refuse(snap, f"{_NAMES[key]} synthesis layers {', '.join(found)} are not the inferred model's "
                            f"{', '.join(names)}")
    inp = net.children["input"].init_kwargs
    want = {"channels": first.channels, "size": first.size, "sampling_rate": first.sampling_rate,
            "bandwidth": first.bandwidth}
    bad = [k for k, v in want.items() if k in inp and _differs(v, inp[k])]
    if bad:
        raise _refuse(snap, f"{_NAMES[key]} synthesis.input has {_settings(inp, bad)}, not the inferred "
                            f"model's {_settings(want, bad)}")
    for spec in specs:
        _check_layer(snap, f"{_NAMES[key]} synthesis.{spec.name}", net.children[spec.name], spec)


def _check_layer(snap: TorchSnapshot, where: str, layer: TorchModule, spec: LayerSpec) -> None:
    kwargs = layer.init_kwargs
    bad = [k for k, attr in _LAYER_KWARGS.items() if k in kwargs and _differs(getattr(spec, attr), kwargs[k])]
    if bad:
        ours = {k: getattr(spec, attr) for k, attr in _LAYER_KWARGS.items()}
        raise _refuse(snap, f"{where} has {_settings(kwargs, bad)}, not the inferred model's "
                            f"{_settings(ours, bad)}")
    filters = {"up_filter": design_lowpass(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2,
                                           spec.tmp_sampling_rate),
               "down_filter": design_lowpass(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                                             spec.tmp_sampling_rate, radial=spec.down_radial)}
    for name, f in filters.items():
        theirs = layer.tensors.get(name)
        if _filter_differs(f, theirs):
            shape = "none" if theirs is None else f"shape {theirs.shape}"
            raise _refuse(snap, f"{where}.{name} ({shape}) is not the filter our layer designs "
                                f"({'none' if f is None else f'shape {f.shape}'}): unsupported")


def _check_resample_filters(snap: TorchSnapshot, kernel: Any) -> None:
    """D's FIR buffers are the normalized outer product of [1, 3, 3, 1], which our D's resampling uses."""
    k = np.asarray([1, 3, 3, 1], np.float64)
    if kernel is not None and [float(v) for v in np.asarray(kernel).ravel()] != list(k):
        raise _refuse(snap, f"unsupported D block_kwargs resample_filter={kernel!r} (ours is [1, 3, 3, 1])")
    want = np.outer(k, k) / np.outer(k, k).sum()
    for name, value in snap.D.all_variables().items():
        if name in IGNORED and (value.shape != want.shape or np.abs(value - want).max() > 1e-6):
            raise _refuse(snap, f"D buffer {name} is not resample_filter=[1, 3, 3, 1] (unsupported)")


def _oihw(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))


def _transpose(w: np.ndarray) -> np.ndarray:
    return np.transpose(w)


def _dense(table: Table, theirs: str, ours: str) -> None:
    table[f"{theirs}.weight"] = (f"{ours}/weight", _transpose)
    table[f"{theirs}.bias"] = (f"{ours}/bias", same)


def _generator_table(model: StyleGAN3Config, res: int, channels: int) -> Table:
    table: Table = {"mapping.w_avg": ("w_avg", same)}
    for i in range(model.mapping_layers):
        _dense(table, f"mapping.fc{i}", f"mapping/dense/{i}")
    table["synthesis.input.weight"] = ("synthesis/input/weight", _transpose)
    _dense(table, "synthesis.input.affine", "synthesis/input/affine")
    for name in ("transform", "freqs", "phases"):
        table[f"synthesis.input.{name}"] = (f"synthesis/input/{name}", same)
    for i, spec in enumerate(layout_of(model, res, channels)[1]):
        theirs, ours = f"synthesis.{spec.name}", f"synthesis/layers/{i}"
        _dense(table, f"{theirs}.affine", f"{ours}/affine")
        table[f"{theirs}.weight"] = (f"{ours}/weight", _oihw)
        table[f"{theirs}.bias"] = (f"{ours}/bias", same)
        table[f"{theirs}.magnitude_ema"] = (f"{ours}/magnitude_ema", same)
    return table


def _conv(table: Table, theirs: str, ours: str, bias: bool = True) -> None:
    table[f"{theirs}.weight"] = (f"{ours}/weight", _oihw)
    if bias:
        table[f"{theirs}.bias"] = (f"{ours}/bias", same)


def _discriminator_table(res: int) -> Table:
    table: Table = {}
    top = int(math.log2(res))
    for level in range(3, top + 1):
        theirs, ours = f"b{2**level}", f"blocks/{level - 2}"
        if level == top:
            _conv(table, f"{theirs}.fromrgb", f"{ours}/fromrgb")
        _conv(table, f"{theirs}.conv0", f"{ours}/conv0")
        _conv(table, f"{theirs}.conv1", f"{ours}/conv1")
        _conv(table, f"{theirs}.skip", f"{ours}/skip", bias=False)
    _conv(table, "b4.conv", "blocks/0/conv")
    table["b4.fc.weight"] = ("blocks/0/fc/weight", lambda w: dense0_rows_nhwc(np.transpose(w)))
    table["b4.fc.bias"] = ("blocks/0/fc/bias", same)
    _dense(table, "b4.out", "blocks/0/out")
    return table


def tables(snap: TorchSnapshot, model: StyleGAN3Config) -> dict[str, Table]:
    """PyTorch parameter/buffer name → (our path, transform), for each of G, D and Gs (= G_ema)."""
    res, channels = resolution(snap), num_channels(snap)
    g_table = _generator_table(model, res, channels)
    return {"G": g_table, "D": _discriminator_table(res), "Gs": g_table}
