"""stylegan3 PyTorch network pickles for tests, without torch: the training loop's dict with G and G_ema built
as `training/networks_stylegan3.py` builds them (Generator = MappingNetwork + SynthesisNetwork of a
SynthesisInput and layers `L<idx>_<size>_<channels>`, each persistence record with the init kwargs the
original passes, its parameters, buffers — magnitude_ema, the SciPy-designed up/down filters or None,
freqs, phases, transform — and attributes), and D as `networks_stylegan2.Discriminator` (written by
original_stylegan2_torch). Random weights under the original names and layouts, readable by
original_stylegan3's NumPy reference of the forward passes."""

from __future__ import annotations

import copy

import numpy as np
import original_stylegan3 as ref
from original_stylegan2_torch import Params, _fc, discriminator, module, pickle_data

# train.py's G kwargs (flat: the synthesis kwargs beside z_dim and mapping_kwargs) at tiny sizes: config T,
# and config R (1×1 convolutions, radial filters, G's channel_base/channel_max doubled, not D's).
T_KWARGS = dict(
    z_dim=12,
    w_dim=12,
    mapping_kwargs=dict(num_layers=2),
    channel_base=512,
    channel_max=16,
    magnitude_ema_beta=0.5 ** (32 / 20000),
    num_fp16_res=4,
    conv_clamp=256,
    num_layers=6,
    c_dim=0,
    img_channels=3,
)
R_KWARGS = dict(T_KWARGS, conv_kernel=1, channel_base=1024, channel_max=32, use_radial_filters=True)
_NETWORK = dict(
    channel_base=32768,
    channel_max=512,
    num_layers=14,
    num_critical=2,
    first_cutoff=2,
    first_stopband=2**2.1,
    last_stopband_rel=2**0.3,
    margin_size=10,
    output_scale=0.25,
    num_fp16_res=4,
)
_LAYER = dict(conv_kernel=3, filter_size=6, lrelu_upsampling=2, use_radial_filters=False)


def config_r(kw: dict) -> bool:
    return kw.get("conv_kernel", 3) == 1


def d_channels(kw: dict) -> tuple[int, int]:
    """train.py doubles G's cbase/cmax for config R, not D's."""
    scale = 2 if config_r(kw) else 1
    return kw["channel_base"] // scale, kw["channel_max"] // scale


def synthesis(kw: dict, p: Params, rng: np.random.Generator) -> tuple:
    """SynthesisNetwork.__init__: the input and its layers as persistence records; and num_ws."""
    g = {k: kw.get(k, v) for k, v in _NETWORK.items()}
    layer_kwargs = {
        k: kw[k]
        for k in (
            "conv_kernel",
            "filter_size",
            "lrelu_upsampling",
            "use_radial_filters",
            "conv_clamp",
            "magnitude_ema_beta",
        )
        if k in kw
    }
    opts = dict(_LAYER, **layer_kwargs)
    res, w_dim, n = kw["img_resolution"], kw["w_dim"], g["num_layers"]
    last_cutoff = res / 2
    exponents = np.minimum(np.arange(n + 1) / (n - g["num_critical"]), 1)
    cutoffs = g["first_cutoff"] * (last_cutoff / g["first_cutoff"]) ** exponents
    stopbands = (
        g["first_stopband"] * (last_cutoff * g["last_stopband_rel"] / g["first_stopband"]) ** exponents
    )
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + g["margin_size"] * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((g["channel_base"] / 2) / cutoffs, g["channel_max"]))
    channels[-1] = kw["img_channels"]

    c0 = int(channels[0])
    freqs = rng.standard_normal((c0, 2))
    radii = np.sqrt(np.square(freqs).sum(axis=1, keepdims=True))
    freqs = freqs / (radii * np.exp(np.square(radii)) ** 0.25) * cutoffs[0]
    angle = rng.uniform(-0.5, 0.5)
    transform = np.array(
        [[np.cos(angle), -np.sin(angle), 0.1], [np.sin(angle), np.cos(angle), -0.2], [0, 0, 1]]
    )
    affine = module(
        "FullyConnectedLayer",
        dict(in_features=w_dim, out_features=4, weight_init=0, bias_init=[1, 0, 0, 0]),
        {
            "weight": p.normal("synthesis.input.affine.weight", (4, w_dim), 0.3),
            "bias": p.normal("synthesis.input.affine.bias", (4,), 0.2, np.array([1.0, 0, 0, 0])),
        },
        activation="linear",
        weight_gain=np.float64(1 / np.sqrt(w_dim)),
        bias_gain=1,
    )
    children = {
        "input": module(
            "SynthesisInput",
            dict(w_dim=w_dim, channels=c0, size=int(sizes[0]), sampling_rate=rates[0], bandwidth=cutoffs[0]),
            {"weight": p.normal("synthesis.input.weight", (c0, c0))},
            {
                "transform": p.buffer("synthesis.input.transform", transform),
                "freqs": p.buffer("synthesis.input.freqs", freqs),
                "phases": p.buffer("synthesis.input.phases", rng.uniform(size=c0) - 0.5),
            },
            {"affine": affine},
            w_dim=w_dim,
            channels=c0,
            size=np.broadcast_to(np.asarray(int(sizes[0])), [2]),
            sampling_rate=rates[0],
            bandwidth=cutoffs[0],
        )
    }
    names = []
    for idx in range(n + 1):
        prev, torgb = max(idx - 1, 0), idx == n
        critical = idx >= n - g["num_critical"]
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if torgb else opts["lrelu_upsampling"])
        k = 1 if torgb else opts["conv_kernel"]
        up, down = int(np.rint(tmp_rate / in_rate)), int(np.rint(tmp_rate / out_rate))
        up_taps = opts["filter_size"] * up if up > 1 and not torgb else 1
        down_taps = opts["filter_size"] * down if down > 1 and not torgb else 1
        radial = opts["use_radial_filters"] and not critical
        cin, cout = int(channels[prev]), int(channels[idx])
        name = f"L{idx}_{int(sizes[idx])}_{cout}"
        full = f"synthesis.{name}"
        fu = ref.design_lowpass_filter(up_taps, cutoffs[prev], half_widths[prev] * 2, tmp_rate)
        fd = ref.design_lowpass_filter(down_taps, cutoffs[idx], half_widths[idx] * 2, tmp_rate, radial=radial)
        pad_total = (
            (int(sizes[idx]) - 1) * down + 1 - (int(sizes[prev]) + k - 1) * up + up_taps + down_taps - 2
        )
        pad_lo = (pad_total + up) // 2
        init = dict(
            w_dim=w_dim,
            is_torgb=torgb,
            is_critically_sampled=critical,
            use_fp16=bool(rates[idx] * 2 ** g["num_fp16_res"] > res),
            in_channels=cin,
            out_channels=cout,
            in_size=int(sizes[prev]),
            out_size=int(sizes[idx]),
            in_sampling_rate=in_rate,
            out_sampling_rate=out_rate,
            in_cutoff=cutoffs[prev],
            out_cutoff=cutoffs[idx],
            in_half_width=half_widths[prev],
            out_half_width=half_widths[idx],
            **layer_kwargs,
        )
        children[name] = module(
            "SynthesisLayer",
            init,
            {
                "weight": p.normal(f"{full}.weight", (cout, cin, k, k)),
                "bias": p.normal(f"{full}.bias", (cout,), 0.2),
            },
            {
                "magnitude_ema": p.buffer(f"{full}.magnitude_ema", rng.uniform(0.3, 3.0)),
                "up_filter": None if fu is None else p.buffer(f"{full}.up_filter", fu),
                "down_filter": None if fd is None else p.buffer(f"{full}.down_filter", fd),
            },
            {"affine": _fc(p, f"{full}.affine", w_dim, cin, bias_mean=1.0)},
            is_torgb=torgb,
            is_critically_sampled=critical,
            tmp_sampling_rate=tmp_rate,
            conv_kernel=k,
            up_factor=up,
            down_factor=down,
            up_taps=up_taps,
            down_taps=down_taps,
            down_radial=radial,
            padding=[int(pad_lo), int(pad_total - pad_lo)] * 2,
        )
        names.append(name)
    net = module(
        "SynthesisNetwork",
        dict(
            w_dim=w_dim,
            img_resolution=res,
            img_channels=kw["img_channels"],
            **{k: v for k, v in kw.items() if k in _NETWORK},
            **layer_kwargs,
        ),
        children=children,
        num_ws=n + 2,
        layer_names=names,
        img_resolution=res,
    )
    return net, n + 2


def generator(kw: dict, rng: np.random.Generator, layouts: dict | None = None) -> tuple:
    """(pickled Generator, its arrays by torch name)."""
    kw, p = copy.deepcopy(kw), Params(rng, layouts)
    net, num_ws = synthesis(kw, p, rng)
    m = dict(kw.get("mapping_kwargs") or {})
    layers, lrmul = m.get("num_layers", 2), m.get("lr_multiplier", 0.01)
    sizes = [kw["z_dim"]] + [kw["w_dim"]] * layers
    mapping = module(
        "MappingNetwork",
        dict(z_dim=kw["z_dim"], c_dim=kw["c_dim"], w_dim=kw["w_dim"], num_ws=num_ws, **m),
        buffers={"w_avg": p.buffer("mapping.w_avg", rng.standard_normal(kw["w_dim"]) * 0.3)},
        children={
            f"fc{i}": _fc(p, f"mapping.fc{i}", sizes[i], sizes[i + 1], lrmul, activation="lrelu")
            for i in range(layers)
        },
        embed=None,
        num_ws=num_ws,
    )
    G = module(
        "Generator",
        kw,
        children={"synthesis": net, "mapping": mapping},
        z_dim=kw["z_dim"],
        c_dim=kw["c_dim"],
        num_ws=num_ws,
    )
    return G, p.values


def network_data(kw: dict, seed: int = 0, layouts: dict | None = None, edit=None) -> tuple[dict, dict]:
    """The training loop's snapshot dict (G, D, G_ema, augment_pipe, training_set_kwargs) and the arrays of
    G_ema and D by torch name. `edit(data)` changes it before pickling."""
    rng = np.random.default_rng(seed)
    G, _ = generator(kw, rng, layouts)
    G_ema, g_values = generator(kw, rng, layouts)
    base, cmax = d_channels(kw)
    D, d_values = discriminator(
        dict(
            img_resolution=kw["img_resolution"],
            img_channels=kw["img_channels"],
            d_arch="resnet",
            channel_base=base,
            channel_max=cmax,
            conv_clamp=kw["conv_clamp"],
            mbstd_group_size=4,
            mbstd_num_channels=1,
            c_dim=kw["c_dim"],
        ),
        rng,
    )
    return pickle_data(kw, G, D, G_ema, None, edit), {"Gs": g_values, "D": d_values}


def reference_images(kw: dict, values: dict, z: np.ndarray, psi: float) -> np.ndarray:
    """original_stylegan3's G(z) (NHWC) for a pickled Generator's kwargs and arrays."""
    m = dict(kw.get("mapping_kwargs") or {})
    layer = {
        k: kw[k]
        for k in (
            "num_critical",
            "first_cutoff",
            "first_stopband",
            "last_stopband_rel",
            "margin_size",
            "conv_kernel",
            "filter_size",
            "lrelu_upsampling",
            "use_radial_filters",
        )
        if k in kw
    }
    images = ref.generator(
        {k: v.astype(np.float64) for k, v in values.items()},
        z.astype(np.float64),
        img_resolution=kw["img_resolution"],
        img_channels=kw["img_channels"],
        channel_base=kw["channel_base"],
        channel_max=kw["channel_max"],
        num_layers=kw.get("num_layers", 14),
        mapping_layers=m.get("num_layers", 2),
        lr_multiplier=m.get("lr_multiplier", 0.01),
        truncation_psi=psi,
        output_scale=kw.get("output_scale", 0.25),
        conv_clamp=kw.get("conv_clamp", 256),
        **layer,
    )
    return images.transpose(0, 2, 3, 1)


def reference_scores(kw: dict, values: dict, images: np.ndarray) -> np.ndarray:
    """original_stylegan3's D (images NHWC) for the pickled D's arrays."""
    base, cmax = d_channels(kw)
    scores = ref.discriminator(
        {k: v.astype(np.float64) for k, v in values.items()},
        images.transpose(0, 3, 1, 2).astype(np.float64),
        img_resolution=kw["img_resolution"],
        channel_base=base,
        channel_max=cmax,
        conv_clamp=kw.get("conv_clamp", 256),
    )
    return scores[:, 0]


def models() -> dict[str, dict]:
    """T and R at 16² and 32²."""
    return {
        f"{name}{res}": dict(kw, img_resolution=res)
        for name, kw in (("T", T_KWARGS), ("R", R_KWARGS))
        for res in (16, 32)
    }
