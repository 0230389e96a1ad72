"""The downloader (file:// URLs, checksums, cache) and the metrics' networks: the Inception GraphDef path on a
small graph built here with the original's node names, and the VGG16 feature/tap models."""

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import INCEPTION_KERNEL, sha256, tgz, tiny_inception_graph

from stylegan_exp import download
from stylegan_exp.config import FIDConfig, NetworkFile, PPLConfig, PRConfig
from stylegan_exp.download import DownloadError, fetch, parse_checksum
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics import networks as nets

# ---------------------------------------------------------------------------------------------- download


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(b"network weights " * 1000)
    return path


def test_fetch_downloads_once_checks_and_caches(source: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real_urlopen = download.urllib.request.urlopen

    def counting_urlopen(url, timeout=None):
        calls.append(url)
        return real_urlopen(url, timeout=timeout)

    monkeypatch.setattr(download.urllib.request, "urlopen", counting_urlopen)
    url = source.as_uri()
    first = fetch(url, tmp_path / "cache", sha256(source))
    second = fetch(url, tmp_path / "cache", sha256(source))
    assert first == second and first.read_bytes() == source.read_bytes() and len(calls) == 1
    assert first.name.endswith("_weights.bin") and [p.name for p in first.parent.iterdir()] == [first.name]
    md5 = "md5:" + hashlib.md5(source.read_bytes()).hexdigest()
    assert fetch(url, tmp_path / "cache", md5) == first and len(calls) == 1  # keras publishes MD5s


def test_fetch_refuses_a_mismatching_download_and_caches_nothing(source: Path, tmp_path: Path) -> None:
    wrong = "sha256:" + "0" * 64
    message = f"^the download does not match {wrong} \\(got sha256:[0-9a-f]{{64}}\\)$"
    with pytest.raises(DownloadError, match=message):
        fetch(source.as_uri(), tmp_path / "cache", wrong)
    assert not list((tmp_path / "cache").iterdir())


def test_fetch_replaces_a_cached_file_that_no_longer_matches(source: Path, tmp_path: Path) -> None:
    path = fetch(source.as_uri(), tmp_path / "cache", sha256(source))
    path.write_bytes(b"bit rot")
    assert fetch(source.as_uri(), tmp_path / "cache", sha256(source)).read_bytes() == source.read_bytes()


def test_fetch_without_checksum_trusts_the_cache_and_logs_the_sha256(source: Path, tmp_path: Path,
                                                                    caplog) -> None:
    path = fetch(source.as_uri(), tmp_path / "cache")
    assert sha256(source).removeprefix("sha256:") in caplog.text and "no checksum pinned" in caplog.text
    path.write_bytes(b"edited")
    assert fetch(source.as_uri(), tmp_path / "cache").read_bytes() == b"edited"


def test_fetch_failures_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        fetch((tmp_path / "missing.tgz").as_uri(), tmp_path / "cache")
    assert "No such file or directory" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "cache").exists()
    for bad in ("sha256", "sha256:xyz", "nosuchhash:00", "sha256:" + "0" * 10):
        with pytest.raises(DownloadError, match="checksum"):
            parse_checksum(bad)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_fetch_over_http_from_a_loopback_server(source: Path, tmp_path: Path) -> None:
    handler = functools.partial(QuietHandler, directory=str(source.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        got = fetch(f"{base}/{source.name}", tmp_path / "cache", sha256(source))
        assert got.read_bytes() == source.read_bytes()
        with pytest.raises(DownloadError, match="^HTTP Error 404: File not found$"):
            fetch(f"{base}/missing.tgz", tmp_path / "cache")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------- Inception

def expected_features(images: np.ndarray, size: int = 8) -> np.ndarray:
    pixels = np.round((images + 1.0) * 127.5)
    x = tf.raw_ops.ResizeBilinear(images=tf.constant(pixels, tf.float32), size=[size, size])
    x = tf.nn.relu(tf.nn.conv2d((x - 128.0) / 128.0, INCEPTION_KERNEL, 1, "SAME"))
    return tf.reduce_mean(x, axis=[1, 2]).numpy()


@pytest.mark.parametrize("add_shapes", [False, True])  # True: batch-1 `_output_shapes` recorded in the graph
def test_standard_inception_runs_the_graphs_own_ops_on_a_batch(tmp_path: Path, add_shapes: bool) -> None:
    graph = tiny_inception_graph(add_shapes=add_shapes)
    archive = tgz(tmp_path / "inception-2015-12-05.tgz", {"LICENSE": b"x", nets.GRAPH_MEMBER: graph})
    cfg = FIDConfig(batch_size=3, standard=NetworkFile(archive.as_uri(), sha256(archive)))
    name, features = nets.inception_features(cfg, tmp_path / "cache")
    images = np.random.RandomState(1).uniform(-1, 1, (7, 16, 16, 3)).astype(np.float32)
    got = features(images)
    assert name == "inception-2015-12-05" and got.shape == (7, 5)
    np.testing.assert_allclose(got, expected_features(images), rtol=1e-5, atol=1e-5)
    grey = features(images[:2, :, :, :1])  # grey images are tiled to RGB
    np.testing.assert_allclose(grey, expected_features(np.repeat(images[:2, :, :, :1], 3, -1)), atol=1e-5)


def test_standard_inception_refuses_what_is_not_its_archive(tmp_path: Path) -> None:
    no_graph = tgz(tmp_path / "a.tgz", {"other.pb": b"x"})
    not_tar = tmp_path / "b.tgz"
    not_tar.write_bytes(b"not a tar")
    for path, reason in ((no_graph, "has no classify_image_graph_def.pb"),
                         (not_tar, "is not the Inception archive")):
        with pytest.raises(MetricError, match=reason):
            nets.inception_features(FIDConfig(standard=NetworkFile(path.as_uri())), tmp_path / "cache")
    corrupt = tgz(tmp_path / "c.tgz", {"classify_image_graph_def.pb": b"\x08\x01garbage"})
    with pytest.raises(MetricError, match="c.tgz is not the Inception archive \\(Error parsing"):
        nets.inception_features(FIDConfig(standard=NetworkFile(corrupt.as_uri())), tmp_path / "cache")
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="ExpandDims")
    other = tgz(tmp_path / "d.tgz", {"classify_image_graph_def.pb": graph.as_graph_def().SerializeToString()})
    with pytest.raises(MetricError, match="the Inception graph has no ExpandDims:0 → pool_3:0 path"):
        nets.inception_features(FIDConfig(standard=NetworkFile(other.as_uri())), tmp_path / "cache")


def test_missing_network_downloads_name_the_metric_the_file_and_the_reason(tmp_path: Path) -> None:
    url = (tmp_path / "missing.h5").as_uri()
    cases = [(lambda: nets.inception_features(FIDConfig(standard=NetworkFile(url)), tmp_path, "FID/KID"),
              "FID/KID needs the 2015-12-05 Inception graph"),
             (lambda: nets.inception_features(FIDConfig(network="keras", keras=NetworkFile(url)), tmp_path),
              "FID needs the Inception-v3 ImageNet weights"),
             (lambda: nets.vgg_fc2_features(PRConfig(weights=NetworkFile(url)), tmp_path),
              "PR needs the VGG16 ImageNet weights"),
             (lambda: nets.vgg_lpips_taps(PPLConfig(weights=NetworkFile(url)), tmp_path),
              "PPL needs the VGG16 ImageNet weights")]
    for load, start in cases:
        with pytest.raises(MetricError) as info:
            load()
        assert str(info.value).startswith(f"{start} from {url}: ") and "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------- VGG16


@pytest.mark.slow
def test_vgg16_fc2_features_and_lpips_taps_have_the_papers_shapes() -> None:
    """Same-shape random weights (the ImageNet ones cannot be downloaded here)."""
    import keras

    vgg = keras.applications.VGG16(weights=None)
    images = np.random.RandomState(0).uniform(-1, 1, (2, 40, 40, 3)).astype(np.float32)
    assert nets.fc2_features(vgg)(images).shape == (2, 4096)
    conv = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    taps = keras.Model(conv.input, [conv.get_layer(n).output for n in nets.LPIPS_TAPS])
    shapes = [tuple(t.shape) for t in taps(nets.vgg_preprocess(tf.zeros([1, 32, 32, 3])))]
    assert shapes == [(1, 32, 32, 64), (1, 16, 16, 128), (1, 8, 8, 256), (1, 4, 4, 512), (1, 2, 2, 512)]


def test_vgg_preprocessing_is_caffe_bgr_minus_the_imagenet_mean() -> None:
    rgb = tf.constant([[[[10.0, 20.0, 30.0]]]])
    np.testing.assert_allclose(nets.vgg_preprocess(rgb).numpy().ravel(),
                               [30 - 103.939, 20 - 116.779, 10 - 123.68], atol=1e-4)
