"""Import of original StyleGAN (TF1, `dnnlib.tflib.Network`) `.pkl` snapshots without TensorFlow 1.

The pickle holds a tuple (G, D, Gs) of `Network` objects. Unpickling maps that class to a stub that
keeps the pickled state (name, static_kwargs, components, variables), so nothing of the original code
runs. `convert` renames the variables to this package's paths (transposing NCHW constants and noise
maps, permuting D's `4x4/Dense0` rows for the NHWC flatten) and `import_pkl` writes a `.npz` snapshot.

    python -m stylegan_exp.legacy karras2019stylegan-ffhq-1024x1024.pkl ffhq.npz
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import pickle
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from stylegan_exp.atomic import atomic_open
from stylegan_exp.nets.build import build_discriminator, build_generator
from stylegan_exp.nets.layers import variables_by_path
from stylegan_exp.train.checkpoint import (
    Snapshot,
    SnapshotError,
    assign_weights,
    load_snapshot,
    save_snapshot,
)

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path("~/.cache/stylegan_exp")
NEVER_FUSED = 1 << 30  # fused_scale_min_res when the original ran with fused_scale=False
_FUSED_ALWAYS = 8  # fused_scale=True: every up/down-scaling convolution (8×8 and up) is fused

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


class LegacyImportError(SnapshotError):
    """An original `.pkl` that cannot be read or does not map onto this package's networks."""


# ---------------------------------------------------------------------------------------------------
# Reading the pickle.


class _NetworkStub:
    """Stands in for `dnnlib.tflib.network.Network`: keeps the pickled state, runs nothing."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class _EasyDictStub(dict):
    """Stands in for `dnnlib.util.EasyDict` (a plain dict with attribute access)."""


_NUMPY_NAMES = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer", "frombuffer"}


class _LegacyUnpickler(pickle.Unpickler):
    """Resolves only the classes an original snapshot needs; anything else is not a StyleGAN pickle."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "dnnlib.tflib.network" and name == "Network":
            return _NetworkStub
        if module == "dnnlib.util" and name == "EasyDict":
            return _EasyDictStub
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        if module.split(".")[0] == "numpy" and name in _NUMPY_NAMES:
            if module.startswith("numpy.core") and int(np.__version__.split(".")[0]) >= 2:
                module = "numpy._core" + module[len("numpy.core") :]
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name}")


@dataclass
class LegacyNetwork:
    """The pickled state of one original `Network`."""

    name: str
    static_kwargs: dict[str, Any]
    variables: dict[str, np.ndarray]
    components: dict[str, LegacyNetwork] = field(default_factory=dict)
    version: int = 3
    build_func_name: str = ""

    @classmethod
    def from_stub(cls, stub: _NetworkStub) -> LegacyNetwork:
        state = stub.state
        components = {}
        for key, comp in dict(state.get("components") or {}).items():
            if not isinstance(comp, _NetworkStub):
                raise TypeError(f"component {key!r} is not a Network")
            components[key] = cls.from_stub(comp)
        return cls(
            name=str(state["name"]),
            static_kwargs=dict(state.get("static_kwargs") or {}),
            variables={str(k): np.asarray(v) for k, v in state["variables"]},
            components=components,
            version=int(state.get("version", 0)),
            build_func_name=str(state.get("build_func_name", "")),
        )

    def all_variables(self) -> dict[str, np.ndarray]:
        """Own variables plus every component's, prefixed by the component key ('mapping/Dense0/weight')."""
        found = dict(self.variables)
        for key, comp in self.components.items():
            found.update({f"{key}/{name}": value for name, value in comp.all_variables().items()})
        return found

    def all_kwargs(self) -> dict[str, Any]:
        """Static kwargs of this network and its components (what each build function received)."""
        merged = dict(self.static_kwargs)
        for comp in self.components.values():
            merged.update(comp.all_kwargs())
        return merged


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


@dataclass
class LegacySnapshot:
    """G, D and Gs of an original snapshot, with the model config they imply."""

    source: str
    G: LegacyNetwork
    D: LegacyNetwork
    Gs: LegacyNetwork

    @property
    def resolution(self) -> int:
        """From the ToRGB layers (ToRGB_lod0 … ToRGB_lod{log2(res)-2}), checked against static_kwargs."""
        pattern = re.compile(r"synthesis/ToRGB_lod(\d+)/")
        lods = [int(m.group(1)) for k in self.Gs.all_variables() if (m := pattern.match(k))]
        if not lods:
            raise LegacyImportError(f"{self.source}: Gs has no synthesis/ToRGB_lod* variables")
        res = 2 ** (max(lods) + 2)
        stated = self.Gs.all_kwargs().get("resolution")
        if stated is not None and int(stated) != res:
            raise LegacyImportError(
                f"{self.source}: static_kwargs resolution {stated} but ToRGB layers give {res}")
        return res

    @property
    def num_channels(self) -> int:
        weight = self.Gs.all_variables().get("synthesis/ToRGB_lod0/weight")
        if weight is None:
            raise LegacyImportError(f"{self.source}: Gs is missing synthesis/ToRGB_lod0/weight")
        return int(weight.shape[-1])

    @property
    def lod(self) -> float:
        """Gs's level of detail when saved: 0 unless the snapshot was taken while growing."""
        return float(np.asarray(self.Gs.variables.get("lod", 0.0)))

    def check_architecture(self) -> None:
        """Only the original StyleGAN's G_style (G_mapping + G_synthesis) and D_basic are supported."""
        found = [(f"{key}", net.build_func_name, want) for key, net, want in
                 (("G", self.G, "G_style"), ("Gs", self.Gs, "G_style"), ("D", self.D, "D_basic"))]
        found += [(f"Gs/{k}", c.build_func_name, f"G_{k}") for k, c in self.Gs.components.items()]
        bad = [f"{key} is {name}" for key, name, want in found if name and name != want]
        if bad or set(self.Gs.components) != {"mapping", "synthesis"}:
            detail = ", ".join(bad) or f"Gs components {sorted(self.Gs.components)}"
            raise LegacyImportError(f"{self.source}: not a StyleGAN G_style/D_basic pickle ({detail})")

    def infer_model(self) -> dict[str, Any]:
        """This package's model dict (ModelConfig fields) for the original's static kwargs."""
        self.check_architecture()
        g, d = self.Gs.all_kwargs(), self.D.all_kwargs()
        for net, kw in (("Gs", g), ("D", d)):
            bad = [f"{k}={kw[k]!r}" for k, default in _REQUIRED_KWARGS.items()
                   if k in kw and _kwarg_differs(kw[k], default)]
            if bad:
                raise LegacyImportError(f"{self.source}: unsupported {net} settings {', '.join(bad)}")
        shared = {"fmap_base": 8192, "fmap_decay": 1.0, "fmap_max": 512, "fused_scale": "auto"}
        differ = [k for k, default in shared.items() if g.get(k, default) != d.get(k, default)]
        if differ:
            raise LegacyImportError(f"{self.source}: G and D differ in {', '.join(differ)} (unsupported)")
        return {
            "name": f"stylegan-pkl-{self.Gs.name}",
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
        }


def _fetch(url: str, cache_dir: Path) -> Path:
    """Download `url` once into `cache_dir` (atomically, with a progress bar) and return the file."""
    cache_dir = cache_dir.expanduser()
    name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]) or "network.pkl"
    target = cache_dir / f"{hashlib.sha1(url.encode()).hexdigest()[:10]}_{name}"
    if target.is_file():
        return target
    with atomic_open(target) as out, urllib.request.urlopen(url, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    return target


def load_pkl(path_or_url: str | Path, cache_dir: str | Path | None = None) -> LegacySnapshot:
    """Read an original (G, D, Gs) pickle from a local path or an http(s) URL (cached download)."""
    source = str(path_or_url)
    if re.match(r"^https?://", source):
        try:
            path = _fetch(source, Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise LegacyImportError(f"cannot download {source}: {exc}") from exc
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            raise LegacyImportError(f"StyleGAN pickle not found: {source}")
    try:
        with open(path, "rb") as f:
            data = _LegacyUnpickler(f).load()
    except OSError as exc:
        raise LegacyImportError(f"cannot read {source}: {exc}") from exc
    except Exception as exc:  # any unpickling failure means: not an original snapshot
        raise LegacyImportError(f"{source} is not a StyleGAN pickle ({type(exc).__name__}: {exc})") from exc
    if not (isinstance(data, tuple) and len(data) == 3 and all(isinstance(n, _NetworkStub) for n in data)):
        raise LegacyImportError(f"{source} is not a StyleGAN pickle (no (G, D, Gs) tuple of Networks)")
    try:
        G, D, Gs = (LegacyNetwork.from_stub(n) for n in data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise LegacyImportError(f"{source} is not a StyleGAN pickle (bad Network state: {exc})") from exc
    return LegacySnapshot(source, G, D, Gs)


# ---------------------------------------------------------------------------------------------------
# Variable mapping.

Transform = Callable[[np.ndarray], np.ndarray]
_IGNORED = {"lod", "synthesis/lod"}  # progressive-growing state; final snapshots have lod = 0


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.transpose(x, (0, 2, 3, 1))


def _generator_table(resolution: int, use_noise: bool,
                     mapping_layers: int) -> dict[str, tuple[str, Transform]]:
    """Original G/Gs variable name → (our path, transform)."""
    log2 = int(math.log2(resolution))
    table: dict[str, tuple[str, Transform]] = {"dlatent_avg": ("w_avg", _same)}
    for i in range(mapping_layers):
        for v in ("weight", "bias"):
            table[f"mapping/Dense{i}/{v}"] = (f"mapping/dense/{i}/{v}", _same)
    for level in range(2, log2 + 1):
        r, ours = 2**level, f"synthesis/blocks/{level - 2}"
        if level == 2:
            layers = {"4x4/Const": ("epi0", None), "4x4/Conv": ("epi1", "conv1")}
            table["synthesis/4x4/Const/const"] = (f"{ours}/const", _nchw_to_nhwc)
        else:
            layers = {f"{r}x{r}/Conv0_up": ("epi0", "conv0"), f"{r}x{r}/Conv1": ("epi1", "conv1")}
        for scope, (epi, conv) in layers.items():
            if conv is not None:
                table[f"synthesis/{scope}/weight"] = (f"{ours}/{conv}/weight", _same)
            table[f"synthesis/{scope}/bias"] = (f"{ours}/{epi}/bias", _same)
            table[f"synthesis/{scope}/StyleMod/weight"] = (f"{ours}/{epi}/style/dense/weight", _same)
            table[f"synthesis/{scope}/StyleMod/bias"] = (f"{ours}/{epi}/style/dense/bias", _same)
            if use_noise:
                table[f"synthesis/{scope}/Noise/weight"] = (f"{ours}/{epi}/noise/weight", _same)
        if use_noise:
            for k, epi in ((2 * level - 4, "epi0"), (2 * level - 3, "epi1")):
                table[f"synthesis/noise{k}"] = (f"{ours}/{epi}/noise/noise", _nchw_to_nhwc)
        for v in ("weight", "bias"):
            table[f"synthesis/ToRGB_lod{log2 - level}/{v}"] = (f"{ours}/torgb/{v}", _same)
    return table


def _dense0_rows_nhwc(w: np.ndarray) -> np.ndarray:
    """D's 4x4/Dense0 weight: rows in NCHW flatten order (c, h, w) → our NHWC order (h, w, c)."""
    fmaps = w.shape[0] // 16
    return w.reshape(fmaps, 4, 4, -1).transpose(1, 2, 0, 3).reshape(w.shape)


def _discriminator_table(resolution: int) -> dict[str, tuple[str, Transform]]:
    """Original D variable name → (our path, transform)."""
    log2 = int(math.log2(resolution))
    table: dict[str, tuple[str, Transform]] = {}
    for level in range(2, log2 + 1):
        r, ours = 2**level, f"blocks/{level - 2}"
        names = {f"FromRGB_lod{log2 - level}": "fromrgb"}
        if level == 2:
            names.update({"4x4/Conv": "conv", "4x4/Dense0": "dense0", "4x4/Dense1": "dense1"})
        else:
            names.update({f"{r}x{r}/Conv0": "conv0", f"{r}x{r}/Conv1_down": "conv1"})
        for scope, layer in names.items():
            for v in ("weight", "bias"):
                fn = _dense0_rows_nhwc if scope == "4x4/Dense0" and v == "weight" else _same
                table[f"{scope}/{v}"] = (f"{ours}/{layer}/{v}", fn)
    return table


def _shorten(names: list[str], limit: int = 6) -> str:
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _convert_network(what: str, net: LegacyNetwork, table: dict[str, tuple[str, Transform]],
                     expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Rename and reshape one network's variables, naming any unknown, missing or mis-shaped one."""
    src = {k: v for k, v in net.all_variables().items() if k not in _IGNORED}
    unknown = sorted(set(src) - set(table))
    missing = sorted(set(table) - set(src))
    problems = []
    if unknown:
        problems.append(f"unknown {_shorten(unknown)}")
    if missing:
        problems.append(f"missing {_shorten(missing)}")
    if problems:
        raise LegacyImportError(f"{what}: {'; '.join(problems)}")
    out: dict[str, np.ndarray] = {}
    wrong = []
    for name, (path, fn) in table.items():
        value = np.asarray(fn(np.asarray(src[name], dtype=np.float32)), dtype=np.float32)
        if path not in expected:
            raise LegacyImportError(f"{what}: {name} maps to {path}, which our network does not have")
        if tuple(value.shape) != expected[path]:
            wrong.append(f"{name} {tuple(src[name].shape)}")
        out[path] = value
    if wrong:
        raise LegacyImportError(f"{what}: shape mismatch for the inferred model: {_shorten(wrong)}")
    return out


def _convert_with(legacy: LegacySnapshot, G: tf.Module, D: tf.Module) -> dict[str, dict[str, np.ndarray]]:
    """Convert, checking every array against the shapes of our networks G and D (of the inferred model)."""
    model, res = legacy.infer_model(), legacy.resolution
    g_shapes = {k: tuple(v.shape) for k, v in variables_by_path(G).items()}
    d_shapes = {k: tuple(v.shape) for k, v in variables_by_path(D).items()}
    g_table = _generator_table(res, model["use_noise"], model["mapping_layers"])
    d_table = _discriminator_table(res)
    result = {}
    for key, net, table, shapes in (("G", legacy.G, g_table, g_shapes), ("D", legacy.D, d_table, d_shapes),
                                    ("Gs", legacy.Gs, g_table, g_shapes)):
        what = f"{legacy.source} ({key})"
        converted = _convert_network(what, net, table, shapes)
        left = sorted(set(shapes) - set(converted))
        if left:
            raise LegacyImportError(f"{what}: no source for our variables {_shorten(left)}")
        result[key] = converted
    return result


def _build(legacy: LegacySnapshot) -> tuple[tf.Module, tf.Module]:
    model, res, channels = legacy.infer_model(), legacy.resolution, legacy.num_channels
    return build_generator(model, res, channels), build_discriminator(model, res, channels)


def convert(legacy: LegacySnapshot) -> dict[str, dict[str, np.ndarray]]:
    """Our variables ({'G','D','Gs'} → path → array) for an original snapshot.

    Raises LegacyImportError naming unknown, missing or mis-shaped original variables.
    """
    return _convert_with(legacy, *_build(legacy))


def build_networks(legacy: LegacySnapshot) -> dict[str, tf.Module]:
    """Our G, D and Gs holding the original's weights."""
    G, D = _build(legacy)
    weights = _convert_with(legacy, G, D)
    nets = {"G": G, "D": D, "Gs": _build(legacy)[0]}
    for key, net in nets.items():
        assign_weights(net, weights.pop(key), f"{legacy.source} ({key})")
    return nets


def import_pkl(path_or_url: str | Path, out_npz: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Convert an original `.pkl` into this package's `.npz` network snapshot (kimg 0)."""
    legacy = load_pkl(path_or_url, cache_dir)
    if legacy.lod != 0:
        log.warning("%s was saved while growing (lod %.3f): use level/fade to match its output",
                    legacy.source, legacy.lod)
    nets = build_networks(legacy)
    return save_snapshot(Path(out_npz), nets, model=legacy.infer_model(), resolution=legacy.resolution,
                         num_channels=legacy.num_channels, kimg=0.0)


def load_any_snapshot(source: str | Path, cache_dir: str | Path | None = None) -> Snapshot:
    """Our `.npz` snapshot or an original `.pkl` (path or URL) as one `Snapshot`, so transfer and
    sampling accept either."""
    text = str(source)
    if not (text.endswith(".pkl") or re.match(r"^https?://", text)):
        return load_snapshot(source)
    legacy = load_pkl(source, cache_dir)
    weights = {f"{net}/{name}": array
               for net, arrays in convert(legacy).items() for name, array in arrays.items()}
    return Snapshot(Path(legacy.source), legacy.infer_model(), legacy.resolution, legacy.num_channels, 0.0,
                    weights)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_exp.legacy",
                                     description="Convert an original StyleGAN .pkl into a .npz snapshot.")
    parser.add_argument("src", help="original network pickle: local path or http(s) URL")
    parser.add_argument("out", help="output .npz network snapshot")
    parser.add_argument("--cache-dir", default=None, help=f"download cache (default {DEFAULT_CACHE_DIR})")
    args = parser.parse_args(argv)
    try:
        out = import_pkl(args.src, args.out, args.cache_dir)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
