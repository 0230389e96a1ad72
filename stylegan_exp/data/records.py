"""Dataset tool v1: pack images into TFRecord shards once, read them back with tf.data.

The original StyleGAN tool stored every level of detail as raw uint8 arrays (~19x the JPEG size).
Here a record holds the encoded image as prepared (JPEG/PNG bytes), its shape and a label, and
lower resolutions for progressive growing are made on the fly with the same 2x2 box filter.

CLI: ``python -m stylegan_exp.data.records SRC DST [--format keep|png|jpeg] [--quality 95]
[--shard-size N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from stylegan_exp.data.images import ImageError, ImageInfo, decode_image, encode_image, read_image_info
from stylegan_exp.nets.layers import downscale2d

VERSION = 1
INFO_FILE = "dataset.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MIN_RESOLUTION = 4
_MAX_NAMED = 10
_KEPT_FORMATS = {"JPEG": "jpeg", "PNG": "png"}
# Modes whose JPEG/PNG bytes tf.data decodes to exactly the pixels Pillow gives; others are re-encoded.
_KEPT_MODES = ("L", "RGB")
_CHANNEL_NAMES = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}


class DatasetError(ValueError):
    """A dataset that cannot be packed or read; the message is one line naming the culprit."""


@dataclass
class ShardInfo:
    """One TFRecord file of a dataset and what it must hash to."""

    file: str
    count: int
    sha256: str
    bytes: int


@dataclass
class DatasetInfo:
    """The contents of ``dataset.json``; ``path`` is the dataset folder."""

    path: Path
    resolution: int
    count: int
    channels: int
    image_format: str
    shards: list[ShardInfo]
    meta: dict = field(default_factory=dict)
    source_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        """Bytes of all shards (what the dataset costs on disk, without the small JSON)."""
        return sum(shard.bytes for shard in self.shards)


# ----------------------------------------------------------------------------------------------
# Writing


def _is_resolution(size: int) -> bool:
    return size >= MIN_RESOLUTION and size & (size - 1) == 0


def _refusal(problems: list[str], what: str = "image") -> DatasetError:
    """One line naming every offending file (the first few, then a count)."""
    n = len(problems)
    shown = "; ".join(problems[:_MAX_NAMED])
    more = f"; and {n - _MAX_NAMED} more" if n > _MAX_NAMED else ""
    return DatasetError(f"{n} {what}{'s' if n != 1 else ''} cannot be packed: {shown}{more}")


def _check_output(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DatasetError(f"output {out_dir} already exists and is not empty; refusing to overwrite it")


def _check_format(image_format: str, allowed: tuple[str, ...]) -> str:
    fmt = "jpeg" if image_format.lower() == "jpg" else image_format.lower()
    if fmt not in allowed:
        raise DatasetError(f"unknown image format {image_format!r} (choose {', '.join(allowed)})")
    return fmt


@contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A temp folder beside out_dir that becomes out_dir on success and vanishes on any failure."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.{uuid.uuid4().hex[:12]}.tmp"
    tmp.mkdir()  # Not mkdtemp: the dataset folder should get the usual (umask) permissions.
    try:
        yield tmp
        try:
            os.rename(tmp, out_dir)  # Atomic; also replaces an empty out_dir, fails on a non-empty one.
        except OSError as exc:
            raise DatasetError(f"cannot move the packed dataset to {out_dir} ({exc.strerror})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _example(data: bytes, shape: tuple[int, int, int]) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(shape))),
        # No source has labels yet; -1 means "unlabelled" and keeps the record format stable.
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[-1])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_shards(
    records: Iterable[tuple[bytes, tuple[int, int, int]]], directory: Path, shard_size: int
) -> list[ShardInfo]:
    """Stream (encoded image, shape) records into numbered shards; the one writer for every source."""
    shards: list[ShardInfo] = []
    writer, path, count = None, None, 0

    def close() -> None:
        writer.close()
        shards.append(ShardInfo(path.name, count, _sha256(path), path.stat().st_size))

    for data, shape in records:
        if writer is None:
            path = directory / f"shard-{len(shards):05d}.tfrecord"
            writer, count = tf.io.TFRecordWriter(str(path)), 0
        writer.write(_example(data, shape))
        count += 1
        if count == shard_size:
            close()
            writer = None
    if writer is not None:
        close()
    return shards


def _write_dataset(
    records: Iterable[tuple[bytes, tuple[int, int, int]]],
    out_dir: Path,
    *,
    shard_size: int,
    describe: Callable[[list[ShardInfo]], DatasetInfo],
) -> DatasetInfo:
    """Write shards and dataset.json atomically; `describe(shards)` supplies the DatasetInfo
    once all records are through, so sources that validate while streaming can still refuse."""
    if shard_size < 1:
        raise DatasetError(f"shard size must be at least 1, got {shard_size}")
    with _staging(out_dir) as tmp:
        shards = _write_shards(records, tmp, shard_size)
        info = describe(shards)
        info.path = out_dir
        document = {"version": VERSION, **{k: v for k, v in asdict(info).items() if k != "path"}}
        (tmp / INFO_FILE).write_text(json.dumps(document, indent=2) + "\n")
    return info


def _scan(src: Path) -> list[Path]:
    if not src.is_dir():
        raise DatasetError(f"source folder {src} does not exist")
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"source folder {src} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _geometry_problems(infos: dict[Path, ImageInfo]) -> list[tuple[Path, str]]:
    """Why each image cannot join the others: the tool needs one square power-of-two size and one
    channel count (grayscale or RGB), as the original dataset_tool did."""
    problems: dict[Path, str] = {}
    for path, info in infos.items():
        size = f"{info.width}x{info.height}"
        if info.width != info.height:
            problems[path] = f"is {size} (not square)"
        elif not _is_resolution(info.width):
            problems[path] = f"is {size} (not a power of two >= {MIN_RESOLUTION})"
        elif info.channels not in (1, 3):
            problems[path] = f"has {info.channels} channels (mode {info.mode}; only grayscale or RGB)"
    valid = [info for path, info in infos.items() if path not in problems]
    if valid:
        size = Counter(info.width for info in valid).most_common(1)[0][0]
        channels = Counter(info.channels for info in valid).most_common(1)[0][0]
        for info in valid:
            if info.width != size:
                problems[info.path] = f"is {info.width}x{info.height} (most images are {size}x{size})"
            elif info.channels != channels:
                problems[info.path] = (
                    f"is {_CHANNEL_NAMES[info.channels]} (most images are {_CHANNEL_NAMES[channels]})"
                )
    return [(path, reason) for path, reason in problems.items()]


def _folder_records(
    infos: list[ImageInfo], src: Path, image_format: str, jpeg_quality: int, channels: int
) -> Iterator[tuple[bytes, tuple[int, int, int]]]:
    """Decode every file once (to catch corrupt ones) and yield what to store; after the last file,
    refuse with every corrupt file named, so the staging folder is discarded."""
    corrupt: list[str] = []
    for info in tqdm(infos, desc="packing", unit="img", disable=None):
        name = info.path.relative_to(src).as_posix()
        data = info.path.read_bytes()
        try:
            pixels = decode_image(data, channels, name=name)
        except ImageError as exc:
            corrupt.append(f"{name} is corrupt ({str(exc).removeprefix(name + ': ')})")
            continue
        if not _keeps_bytes(info, image_format):
            data = encode_image(pixels, _stored_format(info, image_format), jpeg_quality)
        yield data, pixels.shape
    if corrupt:
        raise _refusal(corrupt)


def pack_folder(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    image_format: str = "keep",
    jpeg_quality: int = 95,
    shard_size: int = 2000,
    meta: dict | None = None,
) -> DatasetInfo:
    """Pack a folder of square, power-of-two, equal-size images (recursive, sorted) into a dataset.

    "keep" stores JPEG/PNG file bytes unchanged (no generation loss, ~source size) and re-encodes
    other formats to PNG; "png"/"jpeg" re-encode everything. Refuses, before writing anything,
    when any image does not fit, and leaves nothing behind when a file turns out to be corrupt.
    """
    src, out_dir = Path(src), Path(out_dir)
    fmt = _check_format(image_format, ("keep", "png", "jpeg"))
    _check_output(out_dir)
    files = _scan(src)
    infos: dict[Path, ImageInfo] = {}
    problems: list[tuple[Path, str]] = []
    for path in files:
        try:
            infos[path] = read_image_info(path)
        except ImageError as exc:
            problems.append((path, f"is unreadable ({str(exc).removeprefix(f'{path}: ')})"))
    problems += _geometry_problems(infos)
    if problems:
        order = {path: index for index, path in enumerate(files)}
        problems.sort(key=lambda problem: order[problem[0]])
        raise _refusal([f"{path.relative_to(src).as_posix()} {reason}" for path, reason in problems])
    ordered = [infos[path] for path in files]
    resolution, channels = ordered[0].width, ordered[0].channels
    source_bytes = sum(path.stat().st_size for path in files)

    def describe(shards: list[ShardInfo]) -> DatasetInfo:
        stored = sorted({_stored_format(info, fmt) for info in ordered})
        return DatasetInfo(
            out_dir,
            resolution,
            len(files),
            channels,
            "+".join(stored),
            shards,
            dict(meta or {}),
            source_bytes,
        )

    records = _folder_records(ordered, src, fmt, jpeg_quality, channels)
    return _write_dataset(records, out_dir, shard_size=shard_size, describe=describe)


def _keeps_bytes(info: ImageInfo, image_format: str) -> bool:
    """Whether "keep" may store the file itself: JPEG/PNG in a mode tf.data decodes like Pillow."""
    return image_format == "keep" and info.format in _KEPT_FORMATS and info.mode in _KEPT_MODES


def _stored_format(info: ImageInfo, image_format: str) -> str:
    if _keeps_bytes(info, image_format):
        return _KEPT_FORMATS[info.format]
    return "png" if image_format == "keep" else image_format


def pack_arrays(
    images: np.ndarray | Iterable[np.ndarray],
    out_dir: str | os.PathLike,
    *,
    image_format: str = "png",
    jpeg_quality: int = 95,
    shard_size: int = 2000,
    meta: dict | None = None,
) -> DatasetInfo:
    """Pack in-memory uint8 NHWC images (an array or any iterable of HWC arrays, e.g. a generator
    of synthetic images) with the same writer and rules as pack_folder."""
    out_dir = Path(out_dir)
    fmt = _check_format(image_format, ("png", "jpeg"))
    _check_output(out_dir)
    shape: tuple[int, ...] | None = None  # Shape of image 0: every other image must match it.
    raw_bytes = 0

    def records() -> Iterator[tuple[bytes, tuple[int, int, int]]]:
        nonlocal shape, raw_bytes
        for index, image in enumerate(images):
            image = np.asarray(image)
            _check_array(image, index, shape)
            shape = image.shape
            raw_bytes += image.nbytes
            yield encode_image(image, fmt, jpeg_quality), image.shape
        if shape is None:
            raise DatasetError("no images to pack")

    def describe(shards: list[ShardInfo]) -> DatasetInfo:
        resolution, _, channels = shape
        count = sum(shard.count for shard in shards)
        return DatasetInfo(out_dir, resolution, count, channels, fmt, shards, dict(meta or {}), raw_bytes)

    return _write_dataset(records(), out_dir, shard_size=shard_size, describe=describe)


def _check_array(image: np.ndarray, index: int, expected: tuple[int, ...] | None) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        reason = f"is {image.dtype} {image.shape} (need uint8 HWC with 1 or 3 channels)"
    elif image.shape[0] != image.shape[1]:
        reason = f"is {image.shape[1]}x{image.shape[0]} (not square)"
    elif not _is_resolution(image.shape[0]):
        reason = f"is {image.shape[1]}x{image.shape[0]} (not a power of two >= {MIN_RESOLUTION})"
    elif expected is not None and image.shape != expected:
        reason = f"has shape {image.shape} (image 0 has {expected})"
    else:
        return
    raise _refusal([f"image {index} {reason}"])


# ----------------------------------------------------------------------------------------------
# Reading


def load_info(dataset_dir: str | os.PathLike) -> DatasetInfo:
    """Read dataset.json; any missing or malformed field is a one-line DatasetError."""
    dataset_dir = Path(dataset_dir)
    path = dataset_dir / INFO_FILE
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DatasetError(f"{dataset_dir} is not a dataset (no {INFO_FILE})") from exc
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is unreadable ({' '.join(str(exc).split())})") from exc
    version = document.get("version") if isinstance(document, dict) else None
    if version != VERSION:
        raise DatasetError(f"{path} has version {version!r}; this reader knows version {VERSION}")
    try:
        shards = [
            ShardInfo(str(s["file"]), int(s["count"]), str(s["sha256"]), int(s["bytes"]))
            for s in document["shards"]
        ]
        return DatasetInfo(
            dataset_dir,
            int(document["resolution"]),
            int(document["count"]),
            int(document["channels"]),
            str(document["image_format"]),
            shards,
            dict(document.get("meta") or {}),
            int(document.get("source_bytes", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is invalid ({type(exc).__name__}: {exc})") from exc


def verify_dataset(dataset_dir: str | os.PathLike) -> DatasetInfo:
    """Recompute every shard's size and sha256 against dataset.json (catches bit rot, bad copies)."""
    info = load_info(dataset_dir)
    for shard in info.shards:
        path = info.path / shard.file
        if not path.is_file():
            raise DatasetError(f"shard {shard.file} of {info.path} is missing")
        if path.stat().st_size != shard.bytes or _sha256(path) != shard.sha256:
            raise DatasetError(f"shard {shard.file} of {info.path} does not match its sha256 in {INFO_FILE}")
    return info


def _decode_record(serialized: tf.Tensor, channels: int, stored: int, factor: int) -> tf.Tensor:
    example = tf.io.parse_single_example(serialized, {"image": tf.io.FixedLenFeature([], tf.string)})
    data = example["image"]
    # decode_image would use libjpeg's fast integer DCT; the accurate one matches Pillow exactly.
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=channels, expand_animations=False),
    )
    image = tf.ensure_shape(image, [stored, stored, channels])
    if factor == 1:
        return image
    x = tf.cast(image, tf.float32)[None]
    # Round after every halving, as the original tool did when it stored each level as uint8.
    for _ in range(factor.bit_length() - 1):
        x = tf.round(downscale2d(x, 2))
    return tf.cast(x[0], tf.uint8)


def make_dataset(
    dataset_dir: str | os.PathLike,
    resolution: int,
    batch_size: int,
    *,
    mirror: bool = False,
    seed: int = 0,
    shuffle_buffer: int = 1000,
    cache: bool = True,
    repeat: bool = True,
    keep: Sequence[int] | None = None,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Batches of float32 NHWC reals in [-1, 1] at `resolution` (a power of two <= the stored one).

    Shuffling and random left-right mirroring are deterministic for a given seed. With `cache` every
    image is decoded and box-filtered once and kept in memory; without it the shuffle buffer holds the
    encoded records and only the rows of each batch listed in `keep` (a worker's share of the global
    batch, see distribute.worker_rows) are decoded. Either way a batch holds the same images in the same
    order, mirrored the same way. The lod fade belongs to the training step (nets.layers.fade_lod), since it
    changes with every minibatch.
    """
    info = load_info(dataset_dir)
    if resolution < 1 or resolution & (resolution - 1) or resolution > info.resolution:
        raise DatasetError(
            f"resolution {resolution} is not a power of two <= {info.resolution}, "
            f"the resolution stored in {info.path}"
        )
    factor = info.resolution // resolution
    rows = None if keep is None else tf.constant(np.asarray(keep), tf.int64)

    def decode(serialized: tf.Tensor) -> tf.Tensor:
        return _decode_record(serialized, info.channels, info.resolution, factor)

    files = [str(info.path / shard.file) for shard in info.shards]
    ds = tf.data.TFRecordDataset(files)
    if cache:
        ds = ds.map(decode, num_parallel_calls=num_parallel_calls).cache()
    if shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)

    def to_float(index: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
        if rows is not None:
            batch = tf.gather(batch, rows)
        if not cache:
            spec = tf.TensorSpec([resolution, resolution, info.channels], tf.uint8)
            batch = tf.map_fn(decode, batch, fn_output_signature=spec)
        x = tf.cast(batch, tf.float32) * (2.0 / 255.0) - 1.0  # drange [0, 255] -> [-1, 1]
        if mirror:
            flip = tf.random.stateless_uniform(
                [batch_size, 1, 1, 1], seed=tf.stack([tf.cast(seed, tf.int64), index])
            )
            if rows is not None:
                flip = tf.gather(flip, rows)
            x = tf.where(flip < 0.5, x, tf.reverse(x, axis=[2]))
        return x

    ds = ds.enumerate().map(to_float, num_parallel_calls=num_parallel_calls)
    return ds.prefetch(tf.data.AUTOTUNE)


# ----------------------------------------------------------------------------------------------
# CLI


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
        choices=["keep", "png", "jpeg"],
        help="keep: store JPEG/PNG bytes unchanged (default); png/jpeg: re-encode",
    )
    parser.add_argument("--quality", type=int, default=95, help="JPEG quality when re-encoding (default 95)")
    parser.add_argument(
        "--shard-size", type=int, default=2000, help="images per TFRecord shard (default 2000)"
    )
    args = parser.parse_args(argv)
    try:
        info = pack_folder(
            args.src,
            args.dst,
            image_format=args.format,
            jpeg_quality=args.quality,
            shard_size=args.shard_size,
        )
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ratio = info.total_bytes / info.source_bytes if info.source_bytes else float("nan")
    print(
        f"packed {info.count} images at {info.resolution}x{info.resolution}x{info.channels} "
        f"({info.image_format}) into {info.path}: {len(info.shards)} shards, {info.total_bytes:,} bytes "
        f"({ratio:.3f}x the source)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
