"""The feature and distance networks of the metrics, from files fetched by the one downloader.

A network is loaded once per process. Anything that stops it from loading (no network, a refused or
mismatching download, a file that is not what it should be) is a MetricError of one line naming the
metric, the file and the reason, raised before any image is generated.
"""

from __future__ import annotations

import functools
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from stylegan_exp.config import FIDConfig, PPLConfig, PRConfig
from stylegan_exp.download import DownloadError, fetch
from stylegan_exp.grid import to_uint8
from stylegan_exp.metrics import MetricError

# NHWC float images in [-1, 1] → [N, D] features.
FeatureFn = Callable[[np.ndarray], np.ndarray]

NETWORKS_SUBDIR = "networks"


@contextmanager
def needed_by(purpose: str, what: str, url: str) -> Iterator[None]:
    """Turns a failed download inside the block into the metric's one-line MetricError."""
    try:
        yield
    except DownloadError as exc:
        raise MetricError(f"{purpose} needs {what} from {url}: {exc}") from exc


def _fetch(url: str, checksum: str | None, cache_dir: Path) -> Path:
    return fetch(url, Path(cache_dir).expanduser() / NETWORKS_SUBDIR, checksum)


def to_uint8_range(images: np.ndarray) -> np.ndarray:
    """[-1, 1] NHWC floats → the 8-bit values 0…255 (as float32), grey tiled to RGB.

    The papers measure what would be written to disk: 8-bit images.
    """
    x = to_uint8(images).astype(np.float32)
    return np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def batched(fn: Callable[[np.ndarray], np.ndarray], batch_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """`fn` applied to at most `batch_size` rows at a time, the results concatenated."""

    def apply(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(fn(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])

    return apply


# ------------------------------------------------------------------------------------------ Inception

GRAPH_MEMBER = "classify_image_graph_def.pb"
GRAPH_INPUT = "ExpandDims:0"  # the decoded image, float 0…255, [1, H, W, 3] in the original graph
GRAPH_OUTPUT = "pool_3:0"  # [N, 1, 1, 2048]


def read_graph_def(archive: Path) -> tf.compat.v1.GraphDef:
    """The Inception GraphDef inside the downloaded .tgz (read from the checked archive every time)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = next((m for m in tar.getmembers() if Path(m.name).name == GRAPH_MEMBER), None)
            if member is None:
                raise MetricError(f"{archive} has no {GRAPH_MEMBER}")
            data = tar.extractfile(member).read()
        return tf.compat.v1.GraphDef.FromString(data)
    except (tarfile.TarError, OSError, DecodeError) as exc:
        raise MetricError(f"{archive} is not the Inception archive ({' '.join(str(exc).split())})") from exc


def graph_features(graph_def: tf.compat.v1.GraphDef, batch_size: int) -> FeatureFn:
    """pool_3 features from the graph's own ops: images enter where the original decoded JPEG does,
    so the graph's own ResizeBilinear brings them to 299×299 and its own scaling follows.

    The graph was made for one image at a time: recorded `_output_shapes` (batch 1) would become static
    shapes on import, so they are dropped and every shape follows the batch fed in.
    """
    graph_def = tf.compat.v1.GraphDef.FromString(graph_def.SerializeToString())
    for node in graph_def.node:
        node.attr.pop("_output_shapes", None)

    def imported(images):
        (pool,) = tf.graph_util.import_graph_def(graph_def, input_map={GRAPH_INPUT: images},
                                                 return_elements=[GRAPH_OUTPUT], name="inception")
        return tf.reshape(pool, [tf.shape(images)[0], -1])

    try:
        run = tf.compat.v1.wrap_function(imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])
    except (ValueError, KeyError, TypeError) as exc:
        raise MetricError(f"the Inception graph has no {GRAPH_INPUT} → {GRAPH_OUTPUT} path "
                          f"({' '.join(str(exc).split())})") from exc

    def features(images: np.ndarray) -> np.ndarray:
        return run(tf.constant(to_uint8_range(images))).numpy()

    return batched(features, batch_size)


@functools.cache
def _standard_features(url: str, checksum: str | None, cache_dir: Path, batch_size: int) -> FeatureFn:
    return graph_features(read_graph_def(_fetch(url, checksum, cache_dir)), batch_size)


@functools.cache
def _keras_features(url: str, checksum: str | None, cache_dir: Path, batch_size: int) -> FeatureFn:
    model = keras.applications.InceptionV3(include_top=False, pooling="avg", input_shape=(299, 299, 3),
                                           weights=str(_fetch(url, checksum, cache_dir)))

    def features(images: np.ndarray) -> np.ndarray:
        x = tf.image.resize(to_uint8_range(images), (299, 299), method="bilinear")
        return model(keras.applications.inception_v3.preprocess_input(x), training=False).numpy()

    return batched(features, batch_size)


def inception_features(fid_cfg: FIDConfig, cache_dir: Path, purpose: str = "FID") -> tuple[str, FeatureFn]:
    """(cache name, feature function) of the network `metrics.fid.network` selects, built once."""
    if fid_cfg.network == "standard":
        spec = fid_cfg.standard
        with needed_by(purpose, "the 2015-12-05 Inception graph", spec.url):
            return "inception-2015-12-05", _standard_features(spec.url, spec.checksum, Path(cache_dir),
                                                              fid_cfg.batch_size)
    spec = fid_cfg.keras
    with needed_by(purpose, "the Inception-v3 ImageNet weights", spec.url):
        return "inception-v3-keras", _keras_features(spec.url, spec.checksum, Path(cache_dir),
                                                     fid_cfg.batch_size)


# ------------------------------------------------------------------------------------------ VGG16

VGG_SIZE = 224
# LPIPS' taps: the last ReLU of each of VGG16's five blocks (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
LPIPS_TAPS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")


def vgg_preprocess(pixels: tf.Tensor) -> tf.Tensor:
    """0…255 RGB → keras' (Caffe) VGG16 input: BGR minus the ImageNet mean."""
    return keras.applications.vgg16.preprocess_input(pixels)


@functools.cache
def _vgg16(url: str, checksum: str | None, cache_dir: Path, include_top: bool) -> keras.Model:
    shape = (VGG_SIZE, VGG_SIZE, 3) if include_top else (None, None, 3)
    return keras.applications.VGG16(include_top=include_top, input_shape=shape,
                                    weights=str(_fetch(url, checksum, cache_dir)))


def fc2_features(vgg: keras.Model) -> FeatureFn:
    """4096-d fc2 activations (after its ReLU) of images resized to 224×224, as in the PR paper."""
    fc2 = keras.Model(vgg.input, vgg.get_layer("fc2").output)

    def features(images: np.ndarray) -> np.ndarray:
        x = tf.image.resize(to_uint8_range(images), (VGG_SIZE, VGG_SIZE), method="bilinear")
        return fc2(vgg_preprocess(x), training=False).numpy()

    return features


def vgg_fc2_features(pr_cfg: PRConfig, cache_dir: Path) -> tuple[str, FeatureFn]:
    spec = pr_cfg.weights
    with needed_by("PR", "the VGG16 ImageNet weights", spec.url):
        vgg = _vgg16(spec.url, spec.checksum, Path(cache_dir), True)
    return "vgg16-fc2-keras", batched(fc2_features(vgg), pr_cfg.batch_size)


def vgg_lpips_taps(ppl_cfg: PPLConfig, cache_dir: Path) -> Callable[[tf.Tensor], list[tf.Tensor]]:
    """VGG16's five LPIPS taps as one model: 0…255 RGB NHWC images of any size → five feature maps."""
    spec = ppl_cfg.weights
    with needed_by("PPL", "the VGG16 ImageNet weights", spec.url):
        vgg = _vgg16(spec.url, spec.checksum, Path(cache_dir), False)
    taps = keras.Model(vgg.input, [vgg.get_layer(name).output for name in LPIPS_TAPS])
    return lambda pixels: taps(vgg_preprocess(pixels), training=False)
