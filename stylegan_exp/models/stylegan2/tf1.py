"""Original StyleGAN2 (`G_main` = G_mapping + G_synthesis_stylegan2, `D_stylegan2`) pickles → our StyleGAN2.

Configs E and F (skip or resnet G and D at full resolution) import; configs B–D (G_synthesis_stylegan_revised,
D_stylegan: progressive growing), the 'orig' architectures, conditional models and any build kwarg this
package does not implement are refused with one line naming the setting. Config A pickles are StyleGAN's
G_style/D_basic and import through the `stylegan` importer.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from stylegan_exp.config import typed_model
from stylegan_exp.legacy.pickles import TF1, LegacyImportError, LegacySnapshot
from stylegan_exp.legacy.tables import Table, dense0_rows_nhwc, nchw_to_nhwc, same
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology

FORMAT = TF1
KEYS = {"G_main"}  # the pickled Gs build function
IGNORED = {"lod"}  # G_main's level of detail: always 0 without progressive growing

_BUILD_FUNCS = {"G": "G_main", "Gs": "G_main", "D": "D_stylegan2",
                "Gs/mapping": "G_mapping", "Gs/synthesis": "G_synthesis_stylegan2"}
_WHY = {"G_synthesis_stylegan_revised": "StyleGAN2 configs B–D, grown progressively",
        "D_stylegan": "StyleGAN2 configs B–D, grown progressively"}

# Build kwargs of the generator (G_main, G_mapping, G_synthesis_stylegan2) that are read below or do not
# change the function; any other is refused. Runtime-only switches (randomize_noise, fused_modconv,
# dtype, the *_val validation truncation) do not change the weights or what we compute.
G_KWARGS = {
    "num_channels", "resolution", "label_size", "latent_size", "dlatent_size", "dlatent_broadcast",
    "mapping_layers", "mapping_fmaps", "mapping_lrmul", "mapping_nonlinearity", "normalize_latents",
    "fmap_base", "fmap_decay", "fmap_min", "fmap_max", "architecture", "nonlinearity", "resample_kernel",
    "fused_modconv", "randomize_noise", "dtype", "truncation_psi", "truncation_cutoff", "truncation_psi_val",
    "truncation_cutoff_val", "dlatent_avg_beta", "style_mixing_prob", "mapping_func", "synthesis_func",
}
D_KWARGS = {"num_channels", "resolution", "label_size", "fmap_base", "fmap_decay", "fmap_min", "fmap_max",
             "architecture", "nonlinearity", "mbstd_group_size", "mbstd_num_features", "dtype",
             "resample_kernel"}
# Kwargs implemented only at the original's default: anything else is refused, naming the setting.
_REQUIRED = {"label_size": 0, "nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu",
             "normalize_latents": True, "mapping_func": "G_mapping",
             "synthesis_func": "G_synthesis_stylegan2"}
_SHARED = {"fmap_base": 16 << 10, "fmap_decay": 1.0, "fmap_min": 1, "fmap_max": 512}
_SYNTHESIS_SCOPE = re.compile(r"synthesis/(\d+)x\1/")


def _refuse(snap: LegacySnapshot, message: str) -> LegacyImportError:
    return LegacyImportError(f"{snap.source}: {message}")


def resolution(snap: LegacySnapshot) -> int:
    """The largest `{r}x{r}` scope of the synthesis network, checked against static_kwargs."""
    sizes = [int(m.group(1)) for k in snap.Gs.all_variables() if (m := _SYNTHESIS_SCOPE.match(k))]
    if not sizes:
        raise _refuse(snap, "Gs has no synthesis/<r>x<r>/ variables")
    res = max(sizes)
    stated = snap.Gs.all_kwargs().get("resolution")
    if stated is not None and int(stated) != res:
        raise _refuse(snap, f"static_kwargs resolution {stated} but the synthesis layers give {res}")
    return res


def num_channels(snap: LegacySnapshot) -> int:
    res = resolution(snap)
    weight = snap.Gs.all_variables().get(f"synthesis/{res}x{res}/ToRGB/weight")
    if weight is None:
        raise _refuse(snap, f"Gs is missing synthesis/{res}x{res}/ToRGB/weight")
    return int(weight.shape[-1])


def lod(snap: LegacySnapshot) -> float:
    return float(np.asarray(snap.Gs.variables.get("lod", 0.0)))


def check_architecture(snap: LegacySnapshot) -> None:
    """G_main (G_mapping + G_synthesis_stylegan2) and D_stylegan2 only, naming what else was found."""
    nets = {"G": snap.G, "Gs": snap.Gs, "D": snap.D}
    nets.update({f"Gs/{k}": c for k, c in snap.Gs.components.items()})
    for key, net in nets.items():
        want = _BUILD_FUNCS.get(key)
        if net.build_func_name and net.build_func_name != want:
            why = _WHY.get(net.build_func_name, "unsupported")
            raise _refuse(snap, f"{key} is {net.build_func_name} ({why}); only StyleGAN2 configs E/F "
                                f"({', '.join(sorted(set(_BUILD_FUNCS.values())))}) import")
    if set(snap.Gs.components) != {"mapping", "synthesis"}:
        raise _refuse(snap, f"Gs components {sorted(snap.Gs.components)}, expected mapping and synthesis")


def architecture(snap: LegacySnapshot, net: str, value: Any,
                 supported: tuple[Topology, ...] = (Topology.skip, Topology.resnet)) -> Topology:
    """The pickled `architecture` kwarg, refused in one line unless `supported`."""
    if value not in [a.value for a in supported]:
        raise _refuse(snap, f"unsupported {net} setting architecture={value!r} (supported: "
                            f"{', '.join(a.value for a in supported)})")
    return Topology(value)


def kernel(value: Any) -> list[int]:
    """resample_kernel None is the original's [1] * factor (nearest / box) filter."""
    return [1, 1] if value is None else [int(v) for v in np.asarray(value).ravel()]


def _check_kwargs(snap: LegacySnapshot, net: str, kwargs: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise _refuse(snap, f"unsupported {net} settings {', '.join(f'{k}={kwargs[k]!r}' for k in unknown)}")
    bad = [f"{k}={kwargs[k]!r}" for k, want in _REQUIRED.items() if k in kwargs and kwargs[k] != want]
    if bad:
        raise _refuse(snap, f"unsupported {net} settings {', '.join(bad)}")


def or_neutral(value: Any, neutral: Any) -> Any:
    return neutral if value is None else value


def infer_model(snap: LegacySnapshot) -> StyleGAN2Config:
    """Our StyleGAN2 config for the original's static kwargs (G_main's defaults where absent)."""
    check_architecture(snap)
    g, d = snap.Gs.all_kwargs(), snap.D.all_kwargs()
    _check_kwargs(snap, "Gs", g, G_KWARGS)
    _check_kwargs(snap, "D", d, D_KWARGS)
    differ = [k for k, default in _SHARED.items() if g.get(k, default) != d.get(k, default)]
    if kernel(g.get("resample_kernel", [1, 3, 3, 1])) != kernel(d.get("resample_kernel", [1, 3, 3, 1])):
        differ.append("resample_kernel")
    if differ:
        raise _refuse(snap, f"G and D differ in {', '.join(differ)} (unsupported)")
    return typed_model(StyleGAN2Config, {
        "name": f"stylegan2-pkl-{snap.Gs.name}",
        **{k: type(default)(g.get(k, default)) for k, default in _SHARED.items()},
        "latent_size": int(g.get("latent_size", 512)),
        "dlatent_size": int(g.get("dlatent_size", 512)),
        "mapping_layers": int(g.get("mapping_layers", 8)),
        "mapping_fmaps": int(g.get("mapping_fmaps", 512)),
        "mapping_lrmul": float(g.get("mapping_lrmul", 0.01)),
        "g_architecture": architecture(snap, "Gs", g.get("architecture", "skip")),
        "d_architecture": architecture(snap, "D", d.get("architecture", "resnet")),
        "resample_kernel": kernel(g.get("resample_kernel", [1, 3, 3, 1])),
        # G_main's defaults when absent; None (= disabled there) becomes the neutral value here.
        "style_mixing_prob": float(or_neutral(g.get("style_mixing_prob", 0.9), 0.0)),
        "dlatent_avg_beta": float(or_neutral(g.get("dlatent_avg_beta", 0.995), 1.0)),
        "truncation_psi": float(or_neutral(g.get("truncation_psi", 0.5), 1.0)),
        "truncation_cutoff": g.get("truncation_cutoff"),
        "mbstd_group_size": int(d.get("mbstd_group_size", 4)),
        "mbstd_num_features": int(d.get("mbstd_num_features", 1)),
    })


def _layer(table: Table, scope: str, ours: str, *, modulated: bool = True, noise: bool = False,
           bias: bool = True) -> None:
    """One original layer scope → our layer: weight, (mod_weight/mod_bias → style), (noise_strength), bias."""
    table[f"{scope}/weight"] = (f"{ours}/weight", same)
    if modulated:
        table[f"{scope}/mod_weight"] = (f"{ours}/style/weight", same)
        table[f"{scope}/mod_bias"] = (f"{ours}/style/bias", same)
    if noise:
        table[f"{scope}/noise_strength"] = (f"{ours}/noise/weight", same)
    if bias:
        table[f"{scope}/bias"] = (f"{ours}/bias", same)


def _generator_table(model: StyleGAN2Config, resolution: int) -> Table:
    """Original G/Gs variable name → (our path, transform)."""
    log2 = int(math.log2(resolution))
    table: Table = {"dlatent_avg": ("w_avg", same)}
    for i in range(model.mapping_layers):
        for v in ("weight", "bias"):
            table[f"mapping/Dense{i}/{v}"] = (f"mapping/dense/{i}/{v}", same)
    skip = Topology(model.g_architecture) == Topology.skip
    for level in range(2, log2 + 1):
        r, ours = 2**level, f"synthesis/blocks/{level - 2}"
        if level == 2:
            table["synthesis/4x4/Const/const"] = (f"{ours}/const", nchw_to_nhwc)
            layers = {"4x4/Conv": ("conv", 0)}
        else:
            layers = {f"{r}x{r}/Conv0_up": ("conv0", 2 * level - 5),
                      f"{r}x{r}/Conv1": ("conv1", 2 * level - 4)}
            if Topology(model.g_architecture) == Topology.resnet:
                table[f"synthesis/{r}x{r}/Skip/weight"] = (f"{ours}/skip/weight", same)
        for scope, (layer, index) in layers.items():
            _layer(table, f"synthesis/{scope}", f"{ours}/{layer}", noise=True)
            table[f"synthesis/noise{index}"] = (f"{ours}/{layer}/noise/noise", nchw_to_nhwc)
        if skip or level == log2:
            _layer(table, f"synthesis/{r}x{r}/ToRGB", f"{ours}/torgb")
    return table


def _discriminator_table(model: StyleGAN2Config, resolution: int) -> Table:
    """Original D variable name → (our path, transform)."""
    log2 = int(math.log2(resolution))
    skip = Topology(model.d_architecture) == Topology.skip
    table: Table = {}
    for level in range(3, log2 + 1):
        r, ours = 2**level, f"blocks/{level - 2}"
        if skip or level == log2:
            _layer(table, f"{r}x{r}/FromRGB", f"{ours}/fromrgb", modulated=False)
        _layer(table, f"{r}x{r}/Conv0", f"{ours}/conv0", modulated=False)
        _layer(table, f"{r}x{r}/Conv1_down", f"{ours}/conv1", modulated=False)
        if Topology(model.d_architecture) == Topology.resnet:
            table[f"{r}x{r}/Skip/weight"] = (f"{ours}/skip/weight", same)
    if skip:
        _layer(table, "4x4/FromRGB", "blocks/0/fromrgb", modulated=False)
    _layer(table, "4x4/Conv", "blocks/0/conv", modulated=False)
    _layer(table, "4x4/Dense0", "blocks/0/dense0", modulated=False)
    table["4x4/Dense0/weight"] = ("blocks/0/dense0/weight", dense0_rows_nhwc)
    _layer(table, "Output", "blocks/0/output", modulated=False)
    return table


def tables(snap: LegacySnapshot, model: StyleGAN2Config) -> dict[str, Table]:
    """Original variable name → (our path, transform), for each of G, D and Gs."""
    res = resolution(snap)
    g_table = _generator_table(model, res)
    return {"G": g_table, "D": _discriminator_table(model, res), "Gs": g_table}
