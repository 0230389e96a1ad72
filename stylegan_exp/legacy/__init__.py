"""Import of original (TF1, `dnnlib.tflib.Network`) `.pkl` snapshots without TensorFlow 1.

`snapshot.load_snapshot` reads a `.pkl` (path or URL) wherever our `.npz` is accepted, and
`python -m stylegan_exp.legacy karras2019stylegan-ffhq-1024x1024.pkl ffhq.npz` converts one. Each supported
generator architecture has an importer module (`IMPORTERS`, keyed by the pickled Gs build function) that
infers our model config and maps the variables; reading the pickle itself is shared (`pickles`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from stylegan_exp.config import ModelConfig
from stylegan_exp.legacy import stylegan, stylegan2
from stylegan_exp.legacy.pickles import DEFAULT_CACHE_DIR, LegacyImportError, LegacyNetwork, read_networks
from stylegan_exp.legacy.tables import convert_network
from stylegan_exp.nets.build import build_discriminator, build_generator
from stylegan_exp.nets.layers import variables_by_path
from stylegan_exp.snapshot import Snapshot, SnapshotError, save_snapshot

log = logging.getLogger(__name__)

IMPORTERS: dict[str, ModuleType] = {stylegan.GENERATOR: stylegan, stylegan2.GENERATOR: stylegan2}

__all__ = ["LegacyImportError", "LegacySnapshot", "convert", "import_pkl", "load_pkl", "main",
           "snapshot_from_pkl"]


@dataclass
class LegacySnapshot:
    """G, D and Gs of an original snapshot; what they imply is answered by the architecture's importer."""

    source: str
    G: LegacyNetwork
    D: LegacyNetwork
    Gs: LegacyNetwork

    @property
    def importer(self) -> ModuleType:
        name = self.Gs.build_func_name or stylegan.GENERATOR  # the oldest pickles do not record it
        if name not in IMPORTERS:
            raise LegacyImportError(f"{self.source}: Gs is {name}, which this version cannot import "
                                    f"(supported: {', '.join(IMPORTERS)})")
        return IMPORTERS[name]

    @property
    def resolution(self) -> int:
        return self.importer.resolution(self)

    @property
    def num_channels(self) -> int:
        return self.importer.num_channels(self)

    @property
    def lod(self) -> float:
        """Gs's level of detail when saved: 0 unless the snapshot was taken while growing."""
        return self.importer.lod(self)

    def infer_model(self) -> ModelConfig:
        return self.importer.infer_model(self)


def load_pkl(path_or_url: str | Path, cache_dir: str | Path | None = None) -> LegacySnapshot:
    """Read an original (G, D, Gs) pickle from a local path or an http(s) URL (cached download)."""
    return LegacySnapshot(str(path_or_url), *read_networks(path_or_url, cache_dir))


def convert(legacy: LegacySnapshot) -> dict[str, dict[str, np.ndarray]]:
    """Our variables ({'G','D','Gs'} → path → array) for an original snapshot, checked against the shapes of
    our networks for the inferred model; raises LegacyImportError naming any variable that does not fit."""
    model, res, channels = legacy.infer_model(), legacy.resolution, legacy.num_channels
    shapes = {key: {k: tuple(v.shape) for k, v in variables_by_path(net).items()}
              for key, net in (("G", build_generator(model, res, channels)),
                               ("D", build_discriminator(model, res, channels)))}
    tables = legacy.importer.tables(legacy, model)
    return {key: convert_network(f"{legacy.source} ({key})", getattr(legacy, key), tables[key],
                                 shapes["D" if key == "D" else "G"], legacy.importer.IGNORED)
            for key in ("G", "D", "Gs")}


def _snapshot(legacy: LegacySnapshot) -> Snapshot:
    weights = {f"{net}/{name}": array
               for net, arrays in convert(legacy).items() for name, array in arrays.items()}
    return Snapshot(Path(legacy.source), legacy.infer_model(), legacy.resolution, legacy.num_channels, 0.0,
                    weights, legacy.lod)


def snapshot_from_pkl(source: str | Path, cache_dir: str | Path | None = None) -> Snapshot:
    """An original `.pkl` (path or URL) as our `Snapshot` (kimg 0)."""
    return _snapshot(load_pkl(source, cache_dir))


def import_pkl(path_or_url: str | Path, out_npz: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Convert an original `.pkl` into this package's `.npz` network snapshot (kimg 0)."""
    snap = snapshot_from_pkl(path_or_url, cache_dir)
    nets = {key: snap.network(key) for key in ("G", "D", "Gs")}
    return save_snapshot(Path(out_npz), nets, model=snap.model, resolution=snap.resolution,
                         num_channels=snap.num_channels, kimg=0.0, lod=snap.lod)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_exp.legacy",
                                     description="Convert an original StyleGAN/StyleGAN2 .pkl into a .npz "
                                                 "snapshot.")
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
