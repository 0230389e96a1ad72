"""stylegan2-ada (NVlabs/stylegan2-ada, TensorFlow) pickles → our StyleGAN2.

Their networks (`training.networks`: G_main = G_mapping + G_synthesis, D_main) are StyleGAN2's with the same
variable names, plus build kwargs: `conv_clamp` (every conv layer's output clamped after bias and activation,
kept as our config's `conv_clamp`), `num_fp16_res`/`dtype` (float16 layers, run here in float32: outputs equal
the original's float32 path), `fused_modconv` (the same function computed another way), the 'orig'
architecture, `mapping_fmaps` None (= dlatent_size), a box `resample_kernel` (None). Conditional models
(`label_size` > 0) map onto ours: G_mapping's `LabelEmbed` (dense, normalized, after the normalized z) is our
mapping's embedding; D_main's `LabelEmbed` and `Mapping<i>` layers (its own `mapping_layers`, 0 by default, at
`mapping_lrmul`) are D's label mapping, its `Output` layer gives the cmap features. The comparison methods of
D_main (PA-GAN, spectral norm, adaptive dropout, auxrot scores), a whole-minibatch mbstd group and anything
else this package does not compute are refused in one line naming the setting.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stylegan_exp.config import typed_model
from stylegan_exp.legacy.pickles import TF1, LegacyImportError, LegacySnapshot
from stylegan_exp.legacy.tables import Table, same, times_sqrt2
from stylegan_exp.models.stylegan2 import tf1
from stylegan_exp.models.stylegan2.config import StyleGAN2Config, Topology

FORMAT = TF1
KEYS = {"G_main/G_synthesis"}  # stylegan2-ada's G_main and G_synthesis (StyleGAN2's: G_synthesis_stylegan2)
IGNORED: set[str] = set()
resolution, num_channels, lod = tf1.resolution, tf1.num_channels, tf1.lod

_BUILD_FUNCS = {"G": "G_main", "Gs": "G_main", "D": "D_main", "Gs/mapping": "G_mapping",
                "Gs/synthesis": "G_synthesis"}
_ARCHITECTURES = (Topology.orig, Topology.skip, Topology.resnet)
# Build kwargs that are read below or do not change the function computed in float32 (runtime switches,
# training-only settings, the D label mapping's sizes when there are no labels); any other is refused.
_G_KWARGS = tf1.G_KWARGS | {"label_fmaps", "fmap_const", "use_noise", "num_fp16_res", "conv_clamp"}
_D_KWARGS = tf1.D_KWARGS | {
    "mapping_layers", "mapping_fmaps", "mapping_lrmul", "num_fp16_res", "conv_clamp", "augment_strength",
    "use_pagan", "pagan_num", "pagan_fade", "score_size", "score_max", "use_spectral_norm",
    "adaptive_dropout", "freeze_layers",
}
# Kwargs implemented only at this value (the original's default); anything else is refused, naming it.
_REQUIRED = {"nonlinearity": "lrelu", "mapping_nonlinearity": "lrelu", "normalize_latents": True,
             "use_noise": True, "mapping_func": "G_mapping", "synthesis_func": "G_synthesis",
             "use_pagan": False, "use_spectral_norm": False, "adaptive_dropout": 0, "score_size": 1,
             "score_max": 1}
_SHARED = {"fmap_base": 16384, "fmap_decay": 1.0, "fmap_min": 1, "fmap_max": 512, "conv_clamp": None}


def _refuse(snap: LegacySnapshot, message: str) -> LegacyImportError:
    return LegacyImportError(f"{snap.source}: {message}")


def _check(snap: LegacySnapshot) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Gs and D kwargs, after refusing other networks, unknown kwargs, conditioning and unsupported
    values in one line each."""
    nets = {"G": snap.G, "Gs": snap.Gs, "D": snap.D, **{f"Gs/{k}": c for k, c in snap.Gs.components.items()}}
    for key, net in nets.items():
        if net.build_func_name and net.build_func_name != _BUILD_FUNCS.get(key):
            raise _refuse(snap, f"{key} is {net.build_func_name}; a stylegan2-ada pickle has "
                                f"{', '.join(f'{k} {v}' for k, v in _BUILD_FUNCS.items())}")
    g, d = snap.Gs.all_kwargs(), snap.D.all_kwargs()
    sizes = {key: int(getattr(snap, key).all_kwargs().get("label_size") or 0) for key in ("Gs", "G", "D")}
    if len(set(sizes.values())) > 1:
        found = ", ".join(f"{k} {v}" for k, v in sizes.items())
        raise _refuse(snap, f"the networks differ in label_size ({found}): a conditional pickle has one")
    for net, kwargs, known in (("Gs", g, _G_KWARGS), ("D", d, _D_KWARGS)):
        bad = sorted(set(kwargs) - known)
        bad += [k for k, want in _REQUIRED.items() if k in kwargs and kwargs[k] != want]
        if bad:
            raise _refuse(snap, f"unsupported {net} settings {', '.join(f'{k}={kwargs[k]!r}' for k in bad)}")
    if d.get("mbstd_group_size") is None and int(d.get("mbstd_num_features", 1)) > 0:
        raise _refuse(snap, "unsupported D setting mbstd_group_size=None (one group of the whole minibatch)")
    return g, d


def c_dim(snap: LegacySnapshot) -> int:
    """The label size of a conditional pickle (0: unconditional)."""
    return int(snap.Gs.all_kwargs().get("label_size") or 0)


def _labels(snap: LegacySnapshot, g: dict[str, Any], d: dict[str, Any], nf0: int) -> dict[str, Any]:
    """A conditional pickle's label settings as ours: D's label mapping layers, after refusing embedding
    widths ours does not have (G: dlatent_size, D: nf(0))."""
    if not c_dim(snap):
        return {}
    embed = int(g.get("label_fmaps") or g.get("latent_size", 512))
    if embed != int(g.get("dlatent_size", 512)):
        raise _refuse(snap, f"unsupported Gs setting label_fmaps={embed} (the label embedding's width; only "
                            f"dlatent_size = {g.get('dlatent_size', 512)})")
    cmap = d.get("mapping_fmaps")
    if cmap is not None and int(cmap) != nf0:
        raise _refuse(snap, f"unsupported D setting mapping_fmaps={cmap} (the label mapping's width; only "
                            f"nf(0) = {nf0})")
    return {"conditional": True, "label_mapping_layers": int(d.get("mapping_layers", 0)),
            "label_mapping_lrmul": float(d.get("mapping_lrmul", 0.1))}


def infer_model(snap: LegacySnapshot) -> StyleGAN2Config:
    """Our StyleGAN2 config for the original's static kwargs (stylegan2-ada's defaults where absent)."""
    g, d = _check(snap)
    differ = [k for k, default in _SHARED.items() if g.get(k, default) != d.get(k, default)]
    kernel = tf1.kernel(g.get("resample_kernel", [1, 3, 3, 1]))
    if kernel != tf1.kernel(d.get("resample_kernel", [1, 3, 3, 1])):
        differ.append("resample_kernel")
    if differ:
        raise _refuse(snap, f"G and D differ in {', '.join(differ)} (unsupported)")
    model = typed_model(StyleGAN2Config, {
        "name": f"stylegan2-ada-pkl-{snap.Gs.name}",
        **{k: type(default)(g.get(k, default)) for k, default in _SHARED.items() if default is not None},
        "conv_clamp": None if g.get("conv_clamp") is None else float(g["conv_clamp"]),
        "latent_size": int(g.get("latent_size", 512)),
        "dlatent_size": int(g.get("dlatent_size", 512)),
        "mapping_layers": int(g.get("mapping_layers", 8)),
        "mapping_fmaps": int(g.get("mapping_fmaps") or g.get("dlatent_size", 512)),
        "mapping_lrmul": float(g.get("mapping_lrmul", 0.01)),
        "g_architecture": tf1.architecture(snap, "Gs", g.get("architecture", "skip"), _ARCHITECTURES),
        "d_architecture": tf1.architecture(snap, "D", d.get("architecture", "resnet"), _ARCHITECTURES),
        "resample_kernel": kernel,
        # G_main's defaults when absent; None (= disabled there) becomes the neutral value here.
        "style_mixing_prob": float(tf1.or_neutral(g.get("style_mixing_prob", 0.9), 0.0)),
        "dlatent_avg_beta": float(tf1.or_neutral(g.get("dlatent_avg_beta", 0.995), 1.0)),
        "truncation_psi": float(tf1.or_neutral(g.get("truncation_psi", 0.5), 1.0)),
        "truncation_cutoff": g.get("truncation_cutoff"),
        "mbstd_group_size": int(d["mbstd_group_size"]) if int(d.get("mbstd_num_features", 1)) > 0 else 0,
        "mbstd_num_features": max(int(d.get("mbstd_num_features", 1)), 1),
    })
    const = g.get("fmap_const")
    if const is not None and int(const) != model.nf(1):
        raise _refuse(snap, f"unsupported Gs setting fmap_const={const!r} (only nf(1) = {model.nf(1)})")
    labels = _labels(snap, g, d, model.nf(0))
    return replace(model, **labels)


def tables(snap: LegacySnapshot, model: StyleGAN2Config) -> dict[str, Table]:
    """The variables have StyleGAN2's names (its tables), and a conditional pickle's label layers."""
    found = tf1.tables(snap, model)
    if c_dim(snap):
        for key in ("G", "Gs"):
            found[key] = {**found[key], "mapping/LabelEmbed/weight": ("mapping/embed/weight", same),
                          "mapping/LabelEmbed/bias": ("mapping/embed/bias", same)}
        d = {"LabelEmbed/weight": ("label_mapping/embed/weight", same),
             "LabelEmbed/bias": ("label_mapping/embed/bias", same)}
        for i in range(int(model.label_mapping_layers or 0)):
            d[f"Mapping{i}/weight"] = (f"label_mapping/dense/{i}/weight", same)
            d[f"Mapping{i}/bias"] = (f"label_mapping/dense/{i}/bias", times_sqrt2)
        found["D"] = {**found["D"], **d}
    return found
