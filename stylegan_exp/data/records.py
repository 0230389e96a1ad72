"""The dataset tool: pack a folder of square, power-of-two images into a dataset (TFRecord shards +
dataset.json), refusing with every offending file named. The writer is data/writer.py, the reader
data/reader.py; prepare's pack stage (data/pack.py) uses the same writer.

CLI: ``python -m stylegan_exp.data.records SRC DST [--format keep|png|jpeg] [--quality 95]
[--shard-size N] [--aspect 1:2]``.
"""

from __future__ import annotations

import argparse
import sys

from stylegan_exp.aspect import SUPPORTED, AspectError, parse_aspect
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.writer import STORE_FORMATS, pack_folder


def main(argv: list[str] | None = None) -> int:
    """Pack SRC into DST and print a one-line summary; a refusal is one line on stderr, exit code 1."""
    parser = argparse.ArgumentParser(
        prog="python -m stylegan_exp.data.records", description=__doc__.split("\n")[0]
    )
    parser.add_argument("src", help="folder of square, power-of-two images (searched recursively)")
    parser.add_argument("dst", help="dataset folder to create (must not exist or be empty)")
    parser.add_argument(
        "--format",
        default="keep",
        choices=list(STORE_FORMATS),
        help="keep: store JPEG/PNG bytes unchanged (default); png/jpeg: re-encode",
    )
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality when re-encoding (default 95)")
    parser.add_argument(
        "--shard-size", type=int, default=2000, help="images per TFRecord shard (default 2000)"
    )
    parser.add_argument("--aspect", default="1:1",
                        help=f"width:height of every image (default 1:1; one of {', '.join(SUPPORTED)})")
    args = parser.parse_args(argv)
    try:
        info = pack_folder(
            args.src,
            args.dst,
            image_format=args.format,
            jpeg_quality=args.quality,
            shard_size=args.shard_size,
            aspect=parse_aspect(args.aspect, "--aspect"),
        )
    except (DatasetError, AspectError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ratio = info.total_bytes / info.source_bytes if info.source_bytes else float("nan")
    print(
        f"packed {info.count} images at {'x'.join(map(str, parse_aspect(info.aspect).size(info.resolution)))}"
        f"x{info.channels} "
        f"({info.image_format}) into {info.path}: {len(info.shards)} shards, {info.total_bytes:,} bytes "
        f"({ratio:.3f}x the source)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
