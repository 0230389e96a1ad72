"""`python -m stylegan_exp.convert SRC OUT.npz`: a foreign snapshot (an original TF1 StyleGAN/StyleGAN2,
stylegan2-ada or stylegan2-ada-pytorch `.pkl`, path or URL) as this package's `.npz` network snapshot, without
the original code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stylegan_exp.legacy.pickles import DEFAULT_CACHE_DIR
from stylegan_exp.models import load_snapshot, network, save_snapshot
from stylegan_exp.snapshot import SnapshotError


def convert(source: str | Path, out_npz: str | Path, cache_dir: str | Path | None = None) -> Path:
    """Write a foreign snapshot as our `.npz` (kimg 0, its lod kept)."""
    snap = load_snapshot(source, cache_dir)
    nets = {key: network(snap, key) for key in ("G", "D", "Gs")}
    return save_snapshot(Path(out_npz), nets, model=snap.model, resolution=snap.resolution,
                         num_channels=snap.num_channels, kimg=0.0, lod=snap.lod, labels=snap.labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylegan_exp.convert",
                                     description="Convert an original StyleGAN/StyleGAN2/stylegan2-ada "
                                                 "(TensorFlow or PyTorch) .pkl into a .npz snapshot.")
    parser.add_argument("src", help="original network pickle: local path or http(s) URL")
    parser.add_argument("out", help="output .npz network snapshot")
    parser.add_argument("--cache-dir", default=None, help=f"download cache (default {DEFAULT_CACHE_DIR})")
    args = parser.parse_args(argv)
    try:
        out = convert(args.src, args.out, args.cache_dir)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
