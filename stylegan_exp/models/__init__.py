"""The models this package trains and samples, and the snapshot formats it opens: registered here, once.

A model is one package, `stylegan_exp/models/<arch>/` (its config, networks, training steps, importers),
whose `ARCHITECTURE` is listed in `ARCHITECTURES`. A foreign snapshot format is one reader module (e.g.
`stylegan_exp/legacy/pickles.py`) listed in `FORMATS`; each architecture's importers say which of its
snapshots they convert. Everything else finds a model through these two tables.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect, parse_aspect
from stylegan_exp.config import ConfigError, ModelConfig, typed_model
from stylegan_exp.data.dataset_format import LabelSpace, label_space_from_json
from stylegan_exp.legacy import pickles, torch_pickles
from stylegan_exp.legacy.tables import convert_network
from stylegan_exp.models import stylegan, stylegan2, stylegan3
from stylegan_exp.models.architecture import Architecture
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.network import Discriminator, Network
from stylegan_exp.nets.weights import assign_weights, shapes_by_path, weights_of
from stylegan_exp.snapshot import Snapshot, SnapshotError, read_snapshot, snapshot_arrays, write_snapshot

log = logging.getLogger(__name__)

ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (stylegan.ARCHITECTURE, stylegan2.ARCHITECTURE,
                                                              stylegan3.ARCHITECTURE)}


@dataclass(frozen=True)
class SnapshotFormat:
    """A foreign snapshot format: whether a source is one, how to read it, and what it says a snapshot is
    (the keys an architecture's importer names in its KEYS, most specific first)."""

    name: str
    opens: Callable[[str | Path, str | Path | None], bool]  # (source, download cache dir)
    read: Callable[[str | Path, str | Path | None], Any]
    keys: Callable[[Any], tuple[str, ...]]


FORMATS: tuple[SnapshotFormat, ...] = (  # the first whose `opens` accepts a source reads it
    SnapshotFormat(torch_pickles.TORCH, torch_pickles.opens, torch_pickles.read_snapshot, lambda s: s.keys),
    SnapshotFormat(pickles.TF1, pickles.opens, pickles.read_snapshot, lambda snap: snap.generators),
)


def architecture(model: ModelConfig | str) -> Architecture:
    """The registered architecture of a model config (or of its ARCH name)."""
    name = model if isinstance(model, str) else model.ARCH
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown model architecture {name!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def model_config(arch: str, values: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config recorded in a snapshot or a run, typed and checked like a composed one."""
    return typed_model(architecture(arch).config, values)


def model_schemas() -> list[type[ModelConfig]]:
    return [a.config for a in ARCHITECTURES.values()]


def _shape(aspect: Aspect, c_dim: int) -> dict[str, Aspect | int]:
    """Only networks of rectangles are told their aspect, and only conditional ones their label size
    (architectures without either are refused by config_checks and never see one)."""
    return ({} if aspect.square else {"aspect": aspect}) | ({"c_dim": c_dim} if c_dim else {})


def build_generator(model: ModelConfig, resolution: int, num_channels: int = 3, *, aspect: Aspect = SQUARE,
                    c_dim: int = 0) -> Generator:
    """`c_dim` > 0: conditional on label vectors of that size (no label weights at all when 0)."""
    return architecture(model).generator(model, resolution, num_channels, **_shape(aspect, c_dim))


def build_discriminator(model: ModelConfig, resolution: int, num_channels: int = 3, *,
                        aspect: Aspect = SQUARE, c_dim: int = 0) -> Discriminator:
    return architecture(model).discriminator(model, resolution, num_channels, **_shape(aspect, c_dim))


def network(snap: Snapshot, which: str) -> Network:
    """G, D or Gs built from the snapshot's own model config, holding its weights, running at its lod."""
    build = build_discriminator if which == "D" else build_generator
    net = build(snap.model, snap.resolution, snap.num_channels, aspect=parse_aspect(snap.aspect),
                c_dim=snap.c_dim)
    assign_weights(net, snap.subset(which), f"{snap.path} ({which})")
    net.lod = snap.lod
    return net


def save_snapshot(path: Path, networks: dict[str, tf.Module], *, model: ModelConfig, resolution: int,
                  num_channels: int, kimg: float, lod: float = 0.0, aspect: Aspect = SQUARE,
                  labels: LabelSpace | None = None) -> Path:
    """Atomically write the networks ({'G', 'D', 'Gs'} → network) and what is needed to rebuild them."""
    weights = {key: weights_of(net) for key, net in networks.items()}
    return write_snapshot(path, snapshot_arrays(weights, model=model, resolution=resolution,
                                                num_channels=num_channels, kimg=kimg, lod=lod,
                                                aspect=str(aspect), labels=labels))


def load_snapshot(source: str | Path, cache_dir: str | Path | None = None) -> Snapshot:
    """Our `.npz` snapshot, or a foreign one (path or URL, downloaded once to `cache_dir`) through the
    importer of its architecture."""
    for fmt in FORMATS:
        if fmt.opens(source, cache_dir):
            return _import(fmt, fmt.read(source, cache_dir))
    return read_snapshot(Path(source), model_config, label_space_from_json)


def _import(fmt: SnapshotFormat, foreign: Any) -> Snapshot:
    """A foreign snapshot converted by the importer whose KEYS name what the format says it is (its most
    specific key that an importer names)."""
    keys = fmt.keys(foreign)
    found = []
    for key in keys:
        found = found or [(arch, imp) for arch in ARCHITECTURES.values() for imp in arch.importers
                          if fmt.name == imp.FORMAT and key in imp.KEYS]
    if not found:
        known = sorted(k for a in ARCHITECTURES.values() for imp in a.importers if fmt.name == imp.FORMAT
                       for k in imp.KEYS)
        raise SnapshotError(f"{foreign.source}: Gs is {keys[0]}, which this version cannot import "
                            f"(supported: {', '.join(known)})")
    (arch, importer), = found
    model = importer.infer_model(foreign)
    resolution, channels = importer.resolution(foreign), importer.num_channels(foreign)
    c_dim = importer.c_dim(foreign) if hasattr(importer, "c_dim") else 0
    expected = {"G": shapes_by_path(build_generator(model, resolution, channels, c_dim=c_dim)),
                "D": shapes_by_path(build_discriminator(model, resolution, channels, c_dim=c_dim))}
    tables = importer.tables(foreign, model)
    weights = {f"{key}/{name}": array for key in ("G", "D", "Gs")
               for name, array in convert_network(f"{foreign.source} ({key})", getattr(foreign, key),
                                                  tables[key], expected["D" if key == "D" else "G"],
                                                  importer.IGNORED).items()}
    return Snapshot(Path(foreign.source), model, resolution, channels, 0.0, weights, importer.lod(foreign),
                    labels=_class_labels(foreign.source, c_dim))


def _class_labels(source: str, c_dim: int) -> LabelSpace | None:
    """A conditional pickle's label columns: it names none, so they are `class_0` … (said in the log)."""
    if not c_dim:
        return None
    names = [f"class_{i}" for i in range(c_dim)]
    log.info("%s is conditional on %d labels but names none: they are %s (sample with tags=[%s])", source,
             c_dim, names[0] if c_dim == 1 else f"{names[0]} … {names[-1]}", names[-1])
    return LabelSpace(names)
