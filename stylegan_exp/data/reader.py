"""The dataset reader: dataset.json checked, shards verified, and tf.data batches of reals at any
power-of-two resolution up to the stored one (lower ones box-filtered on the fly, rounded after each
halving as the original tool stored them), shuffled and mirrored deterministically for a seed.
Rectangular datasets are served at their aspect: `resolution` is the short side at every level.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect, AspectError, parse_aspect
from stylegan_exp.data.dataset_format import (
    INFO_FILE,
    VERSION,
    DatasetError,
    DatasetInfo,
    ShardInfo,
    file_sha256,
    label_space_from_json,
)
from stylegan_exp.nets.layers import downscale2d
from stylegan_exp.resolution import is_resolution


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
            label_space_from_json(document.get("labels")),
            str(parse_aspect(document.get("aspect", "1:1"), f"{path}: aspect")),
        )
    except AspectError as exc:
        raise DatasetError(str(exc)) from exc
    except DatasetError as exc:
        raise DatasetError(f"{path} has invalid labels: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is invalid ({type(exc).__name__}: {exc})") from exc


def verify_dataset(dataset_dir: str | os.PathLike) -> DatasetInfo:
    """Recompute every shard's size and sha256 against dataset.json (catches bit rot, bad copies)."""
    info = load_info(dataset_dir)
    for shard in info.shards:
        path = info.path / shard.file
        if not path.is_file():
            raise DatasetError(f"shard {shard.file} of {info.path} is missing")
        if path.stat().st_size != shard.bytes or file_sha256(path) != shard.sha256:
            raise DatasetError(f"shard {shard.file} of {info.path} does not match its sha256 in {INFO_FILE}")
    return info


def _decode_record(serialized: tf.Tensor, channels: int, stored: int, factor: int,
                   aspect: Aspect = SQUARE) -> tf.Tensor:
    data = tf.io.parse_single_example(serialized, {"image": tf.io.FixedLenFeature([], tf.string)})["image"]
    # decode_image would use libjpeg's fast integer DCT; the accurate one matches Pillow exactly.
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=channels, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=channels, expand_animations=False),
    )
    image = tf.ensure_shape(image, [*aspect.shape(stored), channels])
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
    skip: int = 0,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    labels: bool = False,
) -> tf.data.Dataset:
    """Batches of float32 NHWC reals in [-1, 1] at `resolution` (a power of two <= the stored one; the
    short side of a rectangular dataset, served at its aspect), with `labels` as (reals, float32 label
    vectors [N, dim]) pairs, the labels untouched by mirroring.

    Shuffling and random left-right mirroring are deterministic for a given seed. With `cache` every
    image is decoded and box-filtered once and kept in memory; without it the shuffle buffer holds the
    encoded records and only the rows of each batch listed in `keep` (a worker's share of the global
    batch, see distribute.worker_rows) are decoded. Either way a batch holds the same images in the same
    order, mirrored the same way. `skip` batches are passed over before the first one (a resumed run's
    place in the stream: the same batches follow as in the uninterrupted run). The lod fade belongs to the
    training step (nets.layers.fade_lod), since it changes with every minibatch.
    """
    info = load_info(dataset_dir)
    if not is_resolution(resolution) or resolution > info.resolution:
        raise DatasetError(
            f"resolution {resolution} is not a power of two <= {info.resolution}, "
            f"the resolution stored in {info.path}"
        )
    if labels and info.labels is None:
        raise DatasetError(f"{info.path} has no labels: a conditional model needs a dataset packed with them")
    factor = info.resolution // resolution
    aspect = parse_aspect(info.aspect)
    rows = None if keep is None else tf.constant(np.asarray(keep), tf.int64)
    label_feature = {"labels": tf.io.FixedLenFeature([info.labels.dim], tf.float32)} if labels else {}

    def decode(serialized: tf.Tensor) -> tf.Tensor:
        return _decode_record(serialized, info.channels, info.resolution, factor, aspect)

    def decode_with_labels(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return decode(serialized), tf.io.parse_single_example(serialized, label_feature)["labels"]

    files = [str(info.path / shard.file) for shard in info.shards]
    ds = tf.data.TFRecordDataset(files)
    if cache:
        ds = ds.map(decode_with_labels if labels else decode, num_parallel_calls=num_parallel_calls).cache()
    if shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)

    def to_float(index: tf.Tensor, batch: tf.Tensor | tuple[tf.Tensor, tf.Tensor]):
        batch, c = batch if labels and cache else (batch, None)
        if rows is not None:
            batch = tf.gather(batch, rows)
        if labels and not cache:
            c = tf.io.parse_example(batch, label_feature)["labels"]
        elif labels and rows is not None:
            c = tf.gather(c, rows)
        if not cache:
            spec = tf.TensorSpec([*aspect.shape(resolution), info.channels], tf.uint8)
            batch = tf.map_fn(decode, batch, fn_output_signature=spec)
        x = tf.cast(batch, tf.float32) * (2.0 / 255.0) - 1.0  # drange [0, 255] -> [-1, 1]
        if mirror:
            flip = tf.random.stateless_uniform(
                [batch_size, 1, 1, 1], seed=tf.stack([tf.cast(seed, tf.int64), index])
            )
            if rows is not None:
                flip = tf.gather(flip, rows)
            x = tf.where(flip < 0.5, x, tf.reverse(x, axis=[2]))
        return (x, c) if labels else x

    ds = ds.enumerate().skip(skip).map(to_float, num_parallel_calls=num_parallel_calls)
    return ds.prefetch(tf.data.AUTOTUNE)


def read_labels(dataset_dir: str | os.PathLike) -> np.ndarray:
    """Every record's label vector, float32 [count, dim], in the stored order: the real label distribution a
    conditional model draws its fakes' labels from (stylegan2-ada samples the training set's labels)."""
    info = load_info(dataset_dir)
    if info.labels is None:
        raise DatasetError(f"{info.path} has no labels: a conditional model needs a dataset packed with them")
    feature = {"labels": tf.io.FixedLenFeature([info.labels.dim], tf.float32)}
    ds = tf.data.TFRecordDataset([str(info.path / shard.file) for shard in info.shards]).batch(4096)
    chunks = [tf.io.parse_example(batch, feature)["labels"].numpy() for batch in ds]
    found = np.concatenate(chunks) if chunks else np.zeros([0, info.labels.dim], np.float32)
    if len(found) != info.count:
        raise DatasetError(f"{info.path} holds {len(found)} labelled records, dataset.json says {info.count}")
    return found
