"""Original StyleGAN (`G_style` = G_mapping + G_synthesis, `D_basic`) pickles → our StyleGAN networks.

The architecture is inferred from the pickled static kwargs; switches this package implements only at the
original's default value are refused rather than silently imported wrong. Variables are renamed to our paths,
NCHW constants and noise maps transposed, and D's `4x4/Dense0` rows permuted for the NHWC flatten.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from stylegan_exp.config import typed_model
from stylegan_exp.legacy.pickles import TF1, LegacyImportError, LegacySnapshot
from stylegan_exp.legacy.tables import Table, dense0_rows_nhwc, nchw_to_nhwc, same
from stylegan_exp.models.stylegan.config import StyleGANConfig

FORMAT = TF1
KEYS = {"G_style"}  # the pickled Gs build function
NEVER_FUSED = 1 << 30  # fused_scale_min_res when the original ran with fused_scale=False
_FUSED_ALWAYS = 8  # fused_scale=True: every up/down-scaling convolution (8×8 and up) is fused
IGNORED = {"lod", "synthesis/lod"}  # progressive-growing state, read by `lod`

# Architecture switches of G_style/G_synthesis/G_mapping/D_basic that this package implements only at
# the original's default value: an import with any other value is refused rather than silently wrong.
_REQUIRED_KWARGS: dict[str, Any] = {
    "label_size": 0,
    "use_styles": True,
    "const_input_layer": True,
    "nonlinearity": "lrelu",
    "mapping_nonlinearity": "lrelu",
    "use_wscale": True,
    "use_pixel_norm": False,
    "use_instance_norm": True,
    "normalize_latents": True,
    "blur_filter": [1, 2, 1],
    "dtype": "float32",
}


def _kwarg_differs(value: Any, default: Any) -> bool:
    if isinstance(default, list):
        return value is None or list(np.asarray(value).ravel()) != default
    return value != default


def _or(value: Any, neutral: Any) -> Any:
    return neutral if value is None else value


def _fused_min_res(fused_scale: Any) -> int:
    if fused_scale == "auto":
        return 128
    return _FUSED_ALWAYS if fused_scale else NEVER_FUSED


def resolution(snap: LegacySnapshot) -> int:
    """From the ToRGB layers (ToRGB_lod0 … ToRGB_lod{log2(res)-2}), checked against static_kwargs."""
    pattern = re.compile(r"synthesis/ToRGB_lod(\d+)/")
    lods = [int(m.group(1)) for k in snap.Gs.all_variables() if (m := pattern.match(k))]
    if not lods:
        raise LegacyImportError(f"{snap.source}: Gs has no synthesis/ToRGB_lod* variables")
    res = 2 ** (max(lods) + 2)
    stated = snap.Gs.all_kwargs().get("resolution")
    if stated is not None and int(stated) != res:
        raise LegacyImportError(
            f"{snap.source}: static_kwargs resolution {stated} but ToRGB layers give {res}")
    return res

def num_channels(snap: LegacySnapshot) -> int:
    weight = snap.Gs.all_variables().get("synthesis/ToRGB_lod0/weight")
    if weight is None:
        raise LegacyImportError(f"{snap.source}: Gs is missing synthesis/ToRGB_lod0/weight")
    return int(weight.shape[-1])

def lod(snap: LegacySnapshot) -> float:
    """Gs's level of detail when saved: 0 unless the snapshot was taken while growing."""
    return float(np.asarray(snap.Gs.variables.get("lod", 0.0)))

def check_architecture(snap: LegacySnapshot) -> None:
    """Only the original StyleGAN's G_style (G_mapping + G_synthesis) and D_basic are supported."""
    found = [(f"{key}", net.build_func_name, want) for key, net, want in
             (("G", snap.G, "G_style"), ("Gs", snap.Gs, "G_style"), ("D", snap.D, "D_basic"))]
    found += [(f"Gs/{k}", c.build_func_name, f"G_{k}") for k, c in snap.Gs.components.items()]
    bad = [f"{key} is {name}" for key, name, want in found if name and name != want]
    if bad or set(snap.Gs.components) != {"mapping", "synthesis"}:
        detail = ", ".join(bad) or f"Gs components {sorted(snap.Gs.components)}"
        raise LegacyImportError(f"{snap.source}: not a StyleGAN G_style/D_basic pickle ({detail})")

def infer_model(snap: LegacySnapshot) -> StyleGANConfig:
    """Our model config for the original's static kwargs."""
    check_architecture(snap)
    g, d = snap.Gs.all_kwargs(), snap.D.all_kwargs()
    for net, kw in (("Gs", g), ("D", d)):
        bad = [f"{k}={kw[k]!r}" for k, default in _REQUIRED_KWARGS.items()
               if k in kw and _kwarg_differs(kw[k], default)]
        if bad:
            raise LegacyImportError(f"{snap.source}: unsupported {net} settings {', '.join(bad)}")
    shared = {"fmap_base": 8192, "fmap_decay": 1.0, "fmap_max": 512, "fused_scale": "auto"}
    differ = [k for k, default in shared.items() if g.get(k, default) != d.get(k, default)]
    if differ:
        raise LegacyImportError(f"{snap.source}: G and D differ in {', '.join(differ)} (unsupported)")
    return typed_model(StyleGANConfig, {
        "name": f"stylegan-pkl-{snap.Gs.name}",
        "fmap_base": int(g.get("fmap_base", 8192)),
        "fmap_decay": float(g.get("fmap_decay", 1.0)),
        "fmap_max": int(g.get("fmap_max", 512)),
        "latent_size": int(g.get("latent_size", 512)),
        "dlatent_size": int(g.get("dlatent_size", 512)),
        "mapping_layers": int(g.get("mapping_layers", 8)),
        "mapping_fmaps": int(g.get("mapping_fmaps", 512)),
        "mapping_lrmul": float(g.get("mapping_lrmul", 0.01)),
        "use_noise": bool(g.get("use_noise", True)),
        "fused_scale_min_res": _fused_min_res(g.get("fused_scale", "auto")),
        # G_style's defaults when absent; None (= disabled there) becomes the neutral value here.
        "style_mixing_prob": float(_or(g.get("style_mixing_prob", 0.9), 0.0)),
        "dlatent_avg_beta": float(_or(g.get("dlatent_avg_beta", 0.995), 1.0)),
        "truncation_psi": float(_or(g.get("truncation_psi", 0.7), 1.0)),
        "truncation_cutoff": int(_or(g.get("truncation_cutoff", 8), 0)),
        "mbstd_group_size": int(d.get("mbstd_group_size", 4)),
        "mbstd_num_features": int(d.get("mbstd_num_features", 1)),
        "r1_gamma": 10.0,
    })


def _generator_table(resolution: int, use_noise: bool, mapping_layers: int) -> Table:
    """Original G/Gs variable name → (our path, transform)."""
    log2 = int(math.log2(resolution))
    table: Table = {"dlatent_avg": ("w_avg", same)}
    for i in range(mapping_layers):
        for v in ("weight", "bias"):
            table[f"mapping/Dense{i}/{v}"] = (f"mapping/dense/{i}/{v}", same)
    for level in range(2, log2 + 1):
        r, ours = 2**level, f"synthesis/blocks/{level - 2}"
        if level == 2:
            layers = {"4x4/Const": ("epi0", None), "4x4/Conv": ("epi1", "conv1")}
            table["synthesis/4x4/Const/const"] = (f"{ours}/const", nchw_to_nhwc)
        else:
            layers = {f"{r}x{r}/Conv0_up": ("epi0", "conv0"), f"{r}x{r}/Conv1": ("epi1", "conv1")}
        for scope, (epi, conv) in layers.items():
            if conv is not None:
                table[f"synthesis/{scope}/weight"] = (f"{ours}/{conv}/weight", same)
            table[f"synthesis/{scope}/bias"] = (f"{ours}/{epi}/bias", same)
            table[f"synthesis/{scope}/StyleMod/weight"] = (f"{ours}/{epi}/style/dense/weight", same)
            table[f"synthesis/{scope}/StyleMod/bias"] = (f"{ours}/{epi}/style/dense/bias", same)
            if use_noise:
                table[f"synthesis/{scope}/Noise/weight"] = (f"{ours}/{epi}/noise/weight", same)
        if use_noise:
            for k, epi in ((2 * level - 4, "epi0"), (2 * level - 3, "epi1")):
                table[f"synthesis/noise{k}"] = (f"{ours}/{epi}/noise/noise", nchw_to_nhwc)
        for v in ("weight", "bias"):
            table[f"synthesis/ToRGB_lod{log2 - level}/{v}"] = (f"{ours}/torgb/{v}", same)
    return table


def _discriminator_table(resolution: int) -> Table:
    """Original D variable name → (our path, transform)."""
    log2 = int(math.log2(resolution))
    table: Table = {}
    for level in range(2, log2 + 1):
        r, ours = 2**level, f"blocks/{level - 2}"
        names = {f"FromRGB_lod{log2 - level}": "fromrgb"}
        if level == 2:
            names.update({"4x4/Conv": "conv", "4x4/Dense0": "dense0", "4x4/Dense1": "dense1"})
        else:
            names.update({f"{r}x{r}/Conv0": "conv0", f"{r}x{r}/Conv1_down": "conv1"})
        for scope, layer in names.items():
            for v in ("weight", "bias"):
                fn = dense0_rows_nhwc if scope == "4x4/Dense0" and v == "weight" else same
                table[f"{scope}/{v}"] = (f"{ours}/{layer}/{v}", fn)
    return table


def tables(snap: LegacySnapshot, model: StyleGANConfig) -> dict[str, Table]:
    """Original variable name → (our path, transform), for each of G, D and Gs."""
    res = resolution(snap)
    g_table = _generator_table(res, model.use_noise, model.mapping_layers)
    return {"G": g_table, "D": _discriminator_table(res), "Gs": g_table}
