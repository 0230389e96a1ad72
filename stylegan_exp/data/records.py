"""The dataset tool: pack a folder of square, power-of-two images into a dataset (TFRecord shards +
dataset.json), refusing with every offending file named. The writer is data/writer.py, the reader
data/reader.py; prepare's pack stage (data/pack.py) uses the same writer.

With ``--labels sidecar`` (SRC's labels.csv/labels.json, or ``--label-file``) or ``--labels folders``
(each sub-folder a class) every image also gets a label vector (data/labels.py); an image without one,
a sidecar naming a missing file, an unknown tag or an empty vocabulary refuses the folder in one line.

CLI: ``python -m stylegan_exp.data.records SRC DST [--format keep|png|jpeg] [--quality 95]
[--shard-size N] [--aspect 1:2] [--labels sidecar|folders [--vocabulary TAG …] [--top-k 64] [--min-count 10]
[--exclude-tags TAG …] [--label-groups NAME=TAG,TAG …]]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from stylegan_exp.aspect import SUPPORTED, AspectError, parse_aspect
from stylegan_exp.data.dataset_format import DatasetError, LabelSpace
from stylegan_exp.data.labels import Vocabulary, folder_tags, label_files, parse_group
from stylegan_exp.data.writer import STORE_FORMATS, PackItem, pack_folder


def labeller(
    src: str, source: str, label_file: str | None, vocabulary: Vocabulary
) -> Callable[[list[PackItem]], tuple[list[PackItem], LabelSpace]]:
    """What gives the folder's images their vectors (pack_folder's `labeller`), refusing in one line."""

    def label(items: list[PackItem]) -> tuple[list[PackItem], LabelSpace]:
        keys = [item.name for item in items]
        labelled = label_files(keys, folder_tags(Path(src), keys, source, label_file), vocabulary)
        vectors = labelled.vectors
        return [dataclasses.replace(i, labels=v) for i, v in zip(items, vectors, strict=True)], labelled.space

    return label


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
    labels = parser.add_argument_group("labels (for a conditional model)")
    labels.add_argument("--labels", choices=["sidecar", "folders"],
                        help="sidecar: SRC's labels.csv (file,tags or file,class) or labels.json; "
                             "folders: each image's sub-folder is its class")
    labels.add_argument("--label-file", help="the sidecar, when not SRC/labels.csv or SRC/labels.json")
    labels.add_argument("--vocabulary", nargs="*", default=[], metavar="TAG",
                        help="the tags to store (default: the --top-k most common)")
    labels.add_argument("--top-k", type=int, default=64)
    labels.add_argument("--min-count", type=int, default=10, help="fewest images a top-k tag is on")
    labels.add_argument("--exclude-tags", nargs="*", default=[], metavar="TAG")
    labels.add_argument("--label-groups", nargs="*", type=parse_group, default=[], metavar="NAME=TAG,TAG",
                        help="categorical groups: each image has exactly one of the tags")
    args = parser.parse_args(argv)
    vocabulary = Vocabulary(args.vocabulary, args.top_k, args.min_count, args.exclude_tags,
                            dict(args.label_groups))
    try:
        info = pack_folder(
            args.src,
            args.dst,
            image_format=args.format,
            jpeg_quality=args.quality,
            shard_size=args.shard_size,
            labeller=args.labels and labeller(args.src, args.labels, args.label_file, vocabulary),
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
        f"({ratio:.3f}x the source)" + (f", {info.labels.dim} labels" if info.labels else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
