"""The one way to write a dataset: images checked against one set of rules, then streamed into
numbered TFRecord shards and dataset.json inside a temp folder that becomes the dataset only when
complete (a failure or kill leaves nothing).

The rules: every image decodes, is square (or has the `aspect` asked for, see stylegan_exp/aspect.py)
with a power-of-two short side >= 4, and has the size of most of the others and, unless the caller
converts them, their channel count (grayscale or RGB). The dataset
tool (``python -m stylegan_exp.data.records``, pack_folder) refuses a folder with any offending file,
naming each; prepare's pack stage (``data/pack.py``) skips them with their reason in its manifest.
pack_arrays packs in-memory images (the synthetic set) with the same writer. Given a LabelSpace, every
image carries its label vector (PackItem.labels, or pack_arrays' rows) and dataset.json the space with
per-name counts.

"keep" stores JPEG/PNG file bytes unchanged (no generation loss, ~source size) when tf.data decodes
them exactly as Pillow does, and re-encodes everything else to PNG; "png"/"jpeg" re-encode everything.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect, short_side
from stylegan_exp.atomic import FolderExistsError, atomic_dir
from stylegan_exp.data.dataset_format import (
    INFO_FILE,
    DatasetError,
    DatasetInfo,
    LabelSpace,
    ShardInfo,
    file_sha256,
    info_json,
)
from stylegan_exp.data.images import (
    IMAGE_SUFFIXES,
    ImageError,
    ImageInfo,
    decode_image,
    encode_image,
    image_format,
    read_image_info,
)
from stylegan_exp.progress import progress_bar
from stylegan_exp.resolution import MIN_RESOLUTION, is_resolution

STORE_FORMATS = ("keep", "png", "jpeg")
_MAX_NAMED = 10
_KEPT_FORMATS = {"JPEG": "jpeg", "PNG": "png"}
# Modes whose JPEG/PNG bytes tf.data decodes to exactly the pixels Pillow gives; others are re-encoded.
_KEPT_MODES = ("L", "RGB")
_CHANNEL_NAMES = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}

Record = tuple[bytes, tuple[int, int, int], np.ndarray | None]


@dataclass(frozen=True)
class Problem:
    """Why an image cannot be packed: `reason` for a manifest line, `text` to follow the image's name."""

    reason: str
    text: str


@dataclass(frozen=True)
class PackItem:
    """A file offered for packing, what messages call it, and how many records it becomes."""

    path: Path
    name: str
    copies: int = 1
    labels: tuple[float, ...] | None = None


def _size(detail: str) -> Problem:
    return Problem(f"size {detail}", f"is {detail}")


def size_problem(width: int, height: int, aspect: Aspect = SQUARE) -> Problem | None:
    """The geometry rule for one image: square (or `aspect`), with a power-of-two short side >=
    MIN_RESOLUTION."""
    if not aspect.square:
        side = short_side(width, height, aspect)
        if side is None:
            return _size(f"{width}x{height} (not {aspect}, width:height)")
        if not is_resolution(side):
            return _size(f"{width}x{height} (short side not a power of two >= {MIN_RESOLUTION})")
        return None
    if width != height:
        return _size(f"{width}x{height} (not square)")
    if not is_resolution(width):
        return _size(f"{width}x{height} (not a power of two >= {MIN_RESOLUTION})")
    return None


def label_problem(labels: Sequence[float] | None, space: LabelSpace) -> Problem | None:
    """The label rule for one image: a value in [0, 1] per vocabulary name, exactly one per group."""
    if labels is None:
        return Problem("labels", "has no labels")
    vector = np.asarray(labels, np.float64)
    if vector.shape != (space.dim,):
        return Problem("labels", f"has {vector.size} label values (the vocabulary has {space.dim})")
    if not np.all((vector >= 0) & (vector <= 1)):
        return Problem("labels", "has label values outside [0, 1]")
    for group, members in space.groups.items():
        total = sum(vector[space.index(m)] for m in members)
        if total != 1:
            return Problem("labels", f"has {total:g} values of group {group!r} (needs exactly one)")
    return None


def _counted(space: LabelSpace, counts: np.ndarray) -> LabelSpace:
    return LabelSpace(list(space.names), {g: list(m) for g, m in space.groups.items()},
                      [int(c) for c in counts])


def _refusal(problems: list[str], what: str = "image") -> DatasetError:
    """One line naming every offending image (the first few, then a count)."""
    n = len(problems)
    shown = "; ".join(problems[:_MAX_NAMED])
    more = f"; and {n - _MAX_NAMED} more" if n > _MAX_NAMED else ""
    return DatasetError(f"{n} {what}{'s' if n != 1 else ''} cannot be packed: {shown}{more}")


def check_format(name: str, allowed: tuple[str, ...] = STORE_FORMATS) -> str:
    fmt = image_format(name)
    if fmt not in allowed:
        raise DatasetError(f"unknown image format {name!r} (choose {', '.join(allowed)})")
    return fmt


def _check_output(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DatasetError(f"output {out_dir} already exists and is not empty; refusing to overwrite it")


def _example(data: bytes, shape: tuple[int, int, int], labels: np.ndarray | None) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(shape))),
    }
    if labels is None:  # -1 = unlabelled, as every record was before labels existed
        feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[-1]))
    else:
        feature["labels"] = tf.train.Feature(float_list=tf.train.FloatList(value=labels.tolist()))
    # A proto map (the features) serializes in arbitrary order unless asked not to: byte-reproducible shards.
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def _write_shards(records: Iterable[Record], directory: Path, shard_size: int) -> list[ShardInfo]:
    """Stream (encoded image, shape, labels) records into numbered shards."""
    shards: list[ShardInfo] = []
    writer, path, count = None, None, 0

    def close() -> None:
        writer.close()
        shards.append(ShardInfo(path.name, count, file_sha256(path), path.stat().st_size))

    for data, shape, labels in records:
        if writer is None:
            path = directory / f"shard-{len(shards):05d}.tfrecord"
            writer, count = tf.io.TFRecordWriter(str(path)), 0
        writer.write(_example(data, shape, labels))
        count += 1
        if count == shard_size:
            close()
            writer = None
    if writer is not None:
        close()
    return shards


def _write_dataset(
    records: Iterable[Record],
    out_dir: Path,
    *,
    shard_size: int,
    describe: Callable[[list[ShardInfo]], DatasetInfo],
    extra_files: Callable[[], dict[str, bytes]] | None = None,
) -> DatasetInfo:
    """Write shards, dataset.json and any extra files (a manifest) as one folder; `describe(shards)`
    supplies the DatasetInfo once all records are through, so sources that validate while streaming
    can still refuse."""
    if shard_size < 1:
        raise DatasetError(f"shard size must be at least 1, got {shard_size}")
    try:
        with atomic_dir(out_dir) as tmp:
            shards = _write_shards(records, tmp, shard_size)
            info = describe(shards)
            info.path = out_dir
            (tmp / INFO_FILE).write_bytes(info_json(info))
            for name, data in (extra_files() if extra_files else {}).items():
                (tmp / name).write_bytes(data)
    except FolderExistsError as exc:
        raise DatasetError(f"cannot move the packed dataset to {out_dir} ({exc.__cause__.strerror})") from exc
    return info


# ----------------------------------------------------------------------------------------------
# Files


def _header_problem(item: PackItem) -> tuple[ImageInfo | None, Problem | None]:
    if item.path.is_symlink() and not item.path.exists():
        return None, Problem("broken-link", "is a broken link (dangling or a loop)")
    try:
        if item.path.stat().st_size == 0:
            return None, Problem("empty", "is unreadable (empty file)")
        return read_image_info(item.path), None
    except (ImageError, OSError) as exc:
        return None, Problem("unreadable", f"is unreadable ({_without_name(exc, str(item.path))})")


def _without_name(exc: BaseException, name: str) -> str:
    return str(exc).removeprefix(f"{name}: ")


def _geometry_problems(
    infos: dict[int, ImageInfo], channels: int | None, aspect: Aspect = SQUARE
) -> tuple[dict[int, Problem], int, int]:
    """Why each image cannot join the others, and the resolution and channel count of the rest:
    one square power-of-two size and, unless `channels` converts them, one channel count (grayscale
    or RGB), as the original dataset_tool needed."""
    problems: dict[int, Problem] = {}
    for index, info in infos.items():
        problem = size_problem(info.width, info.height, aspect)
        if problem is None and channels is None and info.channels not in (1, 3):
            problem = Problem(
                "channels", f"has {info.channels} channels (mode {info.mode}; only grayscale or RGB)"
            )
        if problem is not None:
            problems[index] = problem
    valid = {index: info for index, info in infos.items() if index not in problems}
    if not valid:
        return problems, 0, channels or 0
    size = Counter(min(info.width, info.height) for info in valid.values()).most_common(1)[0][0]
    width, height = aspect.size(size)
    count = channels or Counter(info.channels for info in valid.values()).most_common(1)[0][0]
    for index, info in valid.items():
        if (info.width, info.height) != (width, height):
            problems[index] = _size(f"{info.width}x{info.height} (most images are {width}x{height})")
        elif channels is None and info.channels != count:
            problems[index] = Problem(
                "channels", f"is {_CHANNEL_NAMES[info.channels]} (most images are {_CHANNEL_NAMES[count]})"
            )
    return problems, size, count


def _keeps_bytes(info: ImageInfo, fmt: str, channels: int) -> bool:
    """Whether "keep" may store the file itself: JPEG/PNG in a mode tf.data decodes like Pillow."""
    return (
        fmt == "keep"
        and info.format in _KEPT_FORMATS
        and info.mode in _KEPT_MODES
        and info.channels == channels
        and info.orientation == 1  # tf.data ignores EXIF orientation; Pillow (and we) apply it.
    )


def _stored_format(info: ImageInfo, fmt: str, channels: int) -> str:
    if _keeps_bytes(info, fmt, channels):
        return _KEPT_FORMATS[info.format]
    return "png" if fmt == "keep" else fmt


def pack_files(
    items: Sequence[PackItem],
    out_dir: str | os.PathLike,
    *,
    strict: bool = True,
    channels: int | None = None,
    image_format: str = "keep",
    jpeg_quality: int = 95,
    shard_size: int = 2000,
    meta: dict | None = None,
    progress: bool = True,
    extra_files: Callable[[list[Problem | None]], dict[str, bytes]] | None = None,
    labels: LabelSpace | None = None,
    aspect: Aspect = SQUARE,
) -> tuple[DatasetInfo, list[Problem | None]]:
    """Pack image files (each `copies` times, in order) into a dataset; returns it and each item's
    problem (None = packed, or skipped for copies 0).

    strict: refuse with every offending file named, before writing anything when the headers tell
    and leaving nothing behind when a file turns out to be corrupt; otherwise skip offending files.
    channels: None keeps the files' own (one count for all), 1 or 3 converts every image.
    aspect: the width:height every image must have (its short side is the dataset's resolution).
    extra_files(problems) gives files to write into the dataset folder with dataset.json.
    labels: the vocabulary of every item's `labels` (an item without valid ones is an offending file).
    """
    out_dir = Path(out_dir)
    fmt = check_format(image_format)
    _check_output(out_dir)
    problems: list[Problem | None] = [None] * len(items)
    infos: dict[int, ImageInfo] = {}
    for index, item in enumerate(items):
        infos[index], problems[index] = _header_problem(item)
    infos = {index: info for index, info in infos.items() if info is not None}
    geometry, resolution, channels = _geometry_problems(infos, channels, aspect)
    for index, problem in geometry.items():
        problems[index] = problem
    if labels is not None:
        labels.check()
        for index, item in enumerate(items):
            if problems[index] is None:
                problems[index] = label_problem(item.labels, labels)
    counts = np.zeros(labels.dim if labels else 0, np.int64)
    if strict and any(problems):
        raise _refusal([f"{item.name} {p.text}" for item, p in zip(items, problems, strict=True) if p])
    used = [i for i, item in enumerate(items) if problems[i] is None and item.copies > 0]
    if not used:
        raise DatasetError("no images to pack")
    stored: set[str] = set()
    source_bytes = 0

    def records() -> Iterator[Record]:
        """Decode every used file once (to catch corrupt ones) and yield what to store."""
        nonlocal source_bytes
        for index in progress_bar(used, desc="packing", unit="img", enabled=progress):
            item, info = items[index], infos[index]
            data = item.path.read_bytes()
            try:
                pixels = decode_image(data, channels, name=item.name)
            except ImageError as exc:
                problems[index] = Problem("corrupt", f"is corrupt ({_without_name(exc, item.name)})")
                continue
            stored.add(_stored_format(info, fmt, channels))
            if not _keeps_bytes(info, fmt, channels):
                data = encode_image(pixels, _stored_format(info, fmt, channels), jpeg_quality)
            source_bytes += item.path.stat().st_size
            vector = None if labels is None else np.asarray(item.labels, np.float32)
            if vector is not None:
                counts[:] += item.copies * (vector > 0)
            for _ in range(item.copies):
                yield data, pixels.shape, vector
        corrupt = [f"{items[i].name} {problems[i].text}" for i in used if problems[i] is not None]
        if strict and corrupt:
            raise _refusal(corrupt)
        if not stored:
            raise DatasetError("no images to pack")

    def describe(shards: list[ShardInfo]) -> DatasetInfo:
        count, formats = sum(shard.count for shard in shards), "+".join(sorted(stored))
        return DatasetInfo(out_dir, resolution, count, channels, formats, shards, dict(meta or {}),
                           source_bytes, labels and _counted(labels, counts),
                           aspect=str(aspect))

    info = _write_dataset(
        records(),
        out_dir,
        shard_size=shard_size,
        describe=describe,
        extra_files=(lambda: extra_files(problems)) if extra_files else None,
    )
    return info, problems


def _scan(src: Path) -> list[Path]:
    if not src.is_dir():
        raise DatasetError(f"source folder {src} does not exist")
    files = sorted(
        p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or p.is_symlink())
    )
    if not files:
        raise DatasetError(f"source folder {src} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def pack_folder(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    image_format: str = "keep",
    jpeg_quality: int = 95,
    shard_size: int = 2000,
    meta: dict | None = None,
    labeller: Callable[[list[PackItem]], tuple[list[PackItem], LabelSpace]] | None = None,
    aspect: Aspect = SQUARE,
) -> DatasetInfo:
    """Pack a folder of square (or `aspect`), power-of-two, equal-size images (recursive, sorted) into a
    dataset, refusing (and writing nothing) when any image does not fit; `labeller(items)` gives them their
    label vectors and the space (data/records.py: from a sidecar or sub-folder names)."""
    src = Path(src)
    check_format(image_format)
    _check_output(Path(out_dir))
    items = [PackItem(path, path.relative_to(src).as_posix()) for path in _scan(src)]
    space = None
    if labeller is not None:
        items, space = labeller(items)
    info, _ = pack_files(
        items,
        out_dir,
        image_format=image_format,
        jpeg_quality=jpeg_quality,
        shard_size=shard_size,
        meta=meta,
        labels=space,
        aspect=aspect,
    )
    return info


# ----------------------------------------------------------------------------------------------
# Arrays


def pack_arrays(
    images: np.ndarray | Iterable[np.ndarray],
    out_dir: str | os.PathLike,
    *,
    image_format: str = "png",
    jpeg_quality: int = 95,
    shard_size: int = 2000,
    meta: dict | None = None,
    label_space: LabelSpace | None = None,
    labels: Sequence[Sequence[float]] | None = None,
    aspect: Aspect = SQUARE,
) -> DatasetInfo:
    """Pack in-memory uint8 NHWC images (an array or any iterable of HWC arrays, e.g. a generator
    of synthetic images) with the same writer and rules as pack_files; with a label_space, `labels`
    holds each image's label vector, in order."""
    out_dir = Path(out_dir)
    fmt = check_format(image_format, ("png", "jpeg"))
    _check_output(out_dir)
    if (label_space is None) != (labels is None):
        raise DatasetError("labelled images need both a label space and one label vector per image")
    if label_space is not None:
        label_space.check()
    counts = np.zeros(label_space.dim if label_space else 0, np.int64)
    shape: tuple[int, ...] | None = None  # Shape of image 0: every other image must match it.
    raw_bytes = 0

    def records() -> Iterator[Record]:
        nonlocal shape, raw_bytes
        for index, image in enumerate(images):
            image = np.asarray(image)
            _check_array(image, index, shape, aspect)
            shape = image.shape
            raw_bytes += image.nbytes
            vector = None
            if label_space is not None:
                if index >= len(labels):
                    raise DatasetError(f"image {index} has no label vector ({len(labels)} given)")
                if (problem := label_problem(labels[index], label_space)) is not None:
                    raise _refusal([f"image {index} {problem.text}"])
                vector = np.asarray(labels[index], np.float32)
                counts[:] += vector > 0
            yield encode_image(image, fmt, jpeg_quality), image.shape, vector
        if shape is None:
            raise DatasetError("no images to pack")
        if label_space is not None and len(labels) != index + 1:
            raise DatasetError(f"{len(labels)} label vectors given for {index + 1} images")

    def describe(shards: list[ShardInfo]) -> DatasetInfo:
        height, width, channels = shape
        count = sum(shard.count for shard in shards)
        return DatasetInfo(out_dir, min(height, width), count, channels, fmt, shards, dict(meta or {}),
                           raw_bytes, label_space and _counted(label_space, counts), aspect=str(aspect))

    return _write_dataset(records(), out_dir, shard_size=shard_size, describe=describe)


def _check_array(image: np.ndarray, index: int, expected: tuple[int, ...] | None,
                 aspect: Aspect = SQUARE) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        text = f"is {image.dtype} {image.shape} (need uint8 HWC with 1 or 3 channels)"
    elif (problem := size_problem(image.shape[1], image.shape[0], aspect)) is not None:
        text = problem.text
    elif expected is not None and image.shape != expected:
        text = f"has shape {image.shape} (image 0 has {expected})"
    else:
        return
    raise _refusal([f"image {index} {text}"])
