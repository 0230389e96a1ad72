"""Conditional stylegan2-ada networks for tests: (G, D, Gs) pickles in the TensorFlow format (G_mapping's
`LabelEmbed`, D_main's `LabelEmbed`/`Mapping<i>` and a cmap-wide `Output`) and the PyTorch one (MappingNetwork
`embed`, D's `mapping` MappingNetwork with z_dim 0, the epilogue's cmap-wide `out`), with random weights, and
NumPy references of their label paths written from stylegan2-ada's `networks.py` and stylegan2-ada-pytorch's
`training/networks.py`; the rest of each forward pass is tests/original_stylegan2*.py's."""

from __future__ import annotations

import pickle

import numpy as np
from original_stylegan import fake_dnnlib, tflib_network
from original_stylegan2 import D_KEYS, _nf, g_network, he, lrelu_gain, make_d_vars
from original_stylegan2_torch import Params, _fc, channels, fc, module, network_data

# What stylegan2-ada's train.py puts in G_args / D_args (its float16 and clamping settings included).
ADA_G = {"num_fp16_res": 4, "fused_modconv": True, "style_mixing_prob": 0.9}
ADA_D = {"num_fp16_res": 4, "freeze_layers": 0, "augment_strength": 0}


def normalize(x: np.ndarray) -> np.ndarray:
    """normalize_2nd_moment along the features."""
    return x / np.sqrt((x**2).mean(axis=1, keepdims=True) + 1e-8)


def one_hot(classes, c_dim: int) -> np.ndarray:
    return np.eye(c_dim, dtype=np.float32)[list(classes)]


# ---------------------------------------------------------------------------------------------------
# TensorFlow (NVlabs/stylegan2-ada): G_main = G_mapping + G_synthesis, D_main.


def write_tf_pkl(path, kw: dict, c_dim: int, seed: int = 0, g_extra: dict | None = None,
                 d_extra: dict | None = None) -> dict:
    """A conditional stylegan2-ada TF (G, D, Gs) pickle. `kw["label_fmaps"]` is G's embedding width (the
    original's default is latent_size), `kw["d_mapping_layers"]` / `kw["d_mapping_lrmul"]` D's label mapping.
    Returns the raw Gs (own, mapping, synthesis) and D variables."""
    rng = np.random.default_rng(seed)
    n = lambda *shape, std=1.0: (rng.standard_normal(shape) * std).astype(np.float32)  # noqa: E731
    embed, lrmul = kw["label_fmaps"], kw["mapping_lrmul"]
    first = kw["mapping_fmaps"] if kw["mapping_layers"] > 1 else kw["dlatent_size"]
    g_kwargs = {**ADA_G, "conv_clamp": kw["conv_clamp"], "label_size": c_dim, "label_fmaps": embed,
                **(g_extra or {})}
    nets = {}
    for name in ("G", "Gs"):
        net, (own, mapping, syn) = g_network(kw, rng, name, extra=g_kwargs)
        mapping["LabelEmbed/weight"], mapping["LabelEmbed/bias"] = n(c_dim, embed), n(embed, std=0.2)
        mapping["Dense0/weight"] = n(kw["latent_size"] + embed, first, std=1 / lrmul)
        components = net._state["components"]
        components["mapping"]._state["variables"] = list(mapping.items())
        components["synthesis"]._state["build_func_name"] = "G_synthesis"
        net._state["variables"] = [(k, v) for k, v in net._state["variables"] if k != "lod"]  # ada has none
        nets[name] = (net, (own, mapping, syn))
    d_vars, cmap = make_d_vars(kw, rng), _nf(kw)(0)
    d_vars["LabelEmbed/weight"], d_vars["LabelEmbed/bias"] = n(c_dim, cmap), n(cmap, std=0.2)
    d_lrmul = kw["d_mapping_lrmul"]
    for i in range(kw["d_mapping_layers"]):
        d_vars[f"Mapping{i}/weight"] = n(cmap, cmap, std=1 / d_lrmul)
        d_vars[f"Mapping{i}/bias"] = n(cmap, std=0.2 / d_lrmul)
    d_vars["Output/weight"], d_vars["Output/bias"] = n(cmap, cmap), n(cmap, std=0.2)
    dkw = {**{k: kw[k] for k in D_KEYS}, "architecture": kw["d_arch"], "conv_clamp": kw["conv_clamp"],
           "label_size": c_dim, "mapping_layers": kw["d_mapping_layers"], "mapping_lrmul": d_lrmul, **ADA_D,
           **(d_extra or {})}
    D = tflib_network("D", "D_main", dkw, d_vars)
    with fake_dnnlib(), open(path, "wb") as f:
        pickle.dump((nets["G"][0], D, nets["Gs"][0]), f, protocol=4)
    return {"Gs": nets["Gs"][1], "D": d_vars}


def ref_tf_mapping(mapping: dict, kw: dict, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """G_mapping with labels: [normalized z, normalized LabelEmbed(c)] through the Dense layers."""
    y = normalize(c.astype(np.float64) @ he(mapping["LabelEmbed/weight"]) + mapping["LabelEmbed/bias"])
    x = np.concatenate([normalize(z.astype(np.float64)), y], axis=1)
    lrmul = kw["mapping_lrmul"]
    for i in range(kw["mapping_layers"]):
        x = lrelu_gain(x @ he(mapping[f"Dense{i}/weight"], lrmul) + mapping[f"Dense{i}/bias"] * lrmul)
    return x


def ref_tf_cmap(d: dict, kw: dict, c: np.ndarray) -> np.ndarray:
    """D_main's label path: normalized LabelEmbed(c) through the Mapping layers."""
    y = normalize(c.astype(np.float64) @ he(d["LabelEmbed/weight"]) + d["LabelEmbed/bias"])
    lrmul = kw["d_mapping_lrmul"]
    for i in range(kw["d_mapping_layers"]):
        y = lrelu_gain(y @ he(d[f"Mapping{i}/weight"], lrmul) + d[f"Mapping{i}/bias"] * lrmul)
    return y


# ---------------------------------------------------------------------------------------------------
# PyTorch (NVlabs/stylegan2-ada-pytorch): Generator (MappingNetwork with `embed`), Discriminator (`mapping`).


def _state(persistent) -> dict:
    return persistent.meta["state"]


def torch_network_data(kw: dict, c_dim: int, seed: int = 0, d_mapping: dict | None = None, edit=None
                       ) -> tuple[dict, dict]:
    """The training loop's snapshot dict of a conditional model and the raw arrays of G_ema and D: the
    unconditional networks of tests/original_stylegan2_torch.py given G's `mapping.embed` (w_dim wide, fc0
    widened by it) and D's label mapping (`mapping`: embed + `d_mapping["num_layers"]` fc layers, default 8 at
    lr 0.01, as MappingNetwork's defaults) with a cmap-wide `b4.out`. `edit(data)` changes it after."""
    data, raw = network_data(kw, seed)
    rng = np.random.default_rng(seed + 1)
    w_dim, lrmul = kw["w_dim"], kw["lr_multiplier"]
    first = kw["layer_features"] if kw["num_layers"] > 1 else w_dim
    for key in ("G", "G_ema"):
        p = Params(rng)
        G = _state(data[key])
        mapping = _state(G["_modules"]["mapping"])
        mapping["_modules"]["embed"] = _fc(p, "mapping.embed", c_dim, w_dim)
        mapping["_modules"]["fc0"] = _fc(p, "mapping.fc0", kw["z_dim"] + w_dim, first, lrmul,
                                         activation="lrelu")
        mapping["_init_kwargs"]["c_dim"] = G["_init_kwargs"]["c_dim"] = G["c_dim"] = c_dim
        if key == "G_ema":
            raw["Gs"].update(p.values)
    p, cmap = Params(rng), channels(kw, 4)
    d_map = dict(d_mapping or {})
    layers, d_lrmul = d_map.get("num_layers", 8), d_map.get("lr_multiplier", 0.01)
    children = {"embed": _fc(p, "mapping.embed", c_dim, cmap)}
    children.update({f"fc{i}": _fc(p, f"mapping.fc{i}", cmap, cmap, d_lrmul, activation="lrelu")
                     for i in range(layers)})
    D = _state(data["D"])
    D["_modules"]["mapping"] = module(
        "MappingNetwork", dict(z_dim=0, c_dim=c_dim, w_dim=cmap, num_ws=None, w_avg_beta=None, **d_map),
        children=children)
    epilogue = _state(D["_modules"]["b4"])
    epilogue["_modules"]["out"] = _fc(p, "b4.out", cmap, cmap)
    epilogue["_init_kwargs"]["cmap_dim"] = cmap
    D["_init_kwargs"]["c_dim"], D["_init_kwargs"]["mapping_kwargs"] = c_dim, d_map
    raw["D"].update(p.values)
    if edit:
        edit(data)
    return data, raw


def ref_torch_mapping(v: dict, kw: dict, z: np.ndarray, c: np.ndarray) -> np.ndarray:
    """MappingNetwork.forward(z, c) before truncation: [normalized z, normalized embed(c)] through the fc
    layers."""
    y = normalize(fc(v, "mapping.embed", c.astype(np.float64)))
    x = np.concatenate([normalize(z.astype(np.float64)), y], axis=1)
    for i in range(kw["num_layers"]):
        x = fc(v, f"mapping.fc{i}", x, "lrelu", kw["lr_multiplier"])
    return x


def ref_torch_cmap(v: dict, c: np.ndarray, d_mapping: dict | None = None) -> np.ndarray:
    """D's `mapping(None, c)`: normalized embed(c) through its fc layers."""
    d_map = dict(d_mapping or {})
    y = normalize(fc(v, "mapping.embed", c.astype(np.float64)))
    for i in range(d_map.get("num_layers", 8)):
        y = fc(v, f"mapping.fc{i}", y, "lrelu", d_map.get("lr_multiplier", 0.01))
    return y
