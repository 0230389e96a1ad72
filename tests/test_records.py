"""Dataset tool v1 and the tf.data reader, on the real face crops in ../shared/data."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO
from PIL import Image

from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.images import decode_image, load_image
from stylegan_exp.data.reader import load_info, make_dataset, verify_dataset
from stylegan_exp.data.records import main
from stylegan_exp.data.writer import pack_arrays, pack_folder
from stylegan_exp.nets.layers import downscale2d as downscale
from stylegan_exp.nets.layers import fade_lod
from stylegan_exp.nets.layers import upscale2d as upscale
from stylegan_exp.steps.replicas import worker_rows


def np_box_down(x: np.ndarray, factor: int) -> np.ndarray:
    """The original dataset_tool's lod step in NumPy: 2x2 mean, rounded to uint8, repeated."""
    x = x.astype(np.float64)
    while factor > 1:
        x = np.rint((x[:, 0::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 0::2] + x[:, 1::2, 1::2]) * 0.25)
        factor //= 2
    return x


def to_net(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) * np.float32(2 / 255) - np.float32(1)


def one_batch(ds: tf.data.Dataset) -> np.ndarray:
    return next(iter(ds)).numpy()


@pytest.fixture(scope="module")
def faces64(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "anime_faces_64").glob("*.jpg"))


@pytest.fixture(scope="module")
def sources(faces64: list[Path]) -> np.ndarray:
    return np.stack([load_image(p) for p in faces64])


@pytest.fixture(scope="module")
def packed(shared_data: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "faces64"
    pack_folder(shared_data / "anime_faces_64", out, shard_size=300, meta={"name": "faces64"})
    return out


def small_folder(faces64: list[Path], root: Path, n: int = 6) -> Path:
    src = root / "src"
    src.mkdir()
    for p in faces64[:n]:
        shutil.copy(p, src / p.name)
    return src


def records_of(dataset: Path) -> list[dict]:
    info = load_info(dataset)
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }
    ds = tf.data.TFRecordDataset([str(dataset / s.file) for s in info.shards]).map(
        lambda r: tf.io.parse_single_example(r, spec)
    )
    return [{k: v.numpy() for k, v in r.items()} for r in ds]


# ----------------------------------------------------------------------------------------------
# Packing real JPEGs


def test_round_trip_keeps_every_jpeg_byte_for_byte(packed: Path, faces64: list[Path]) -> None:
    recs = records_of(packed)
    assert len(recs) == len(faces64) == 1000
    for rec, path in zip(recs, faces64, strict=True):
        data = path.read_bytes()
        assert rec["image"] == data, path.name
        assert list(rec["shape"]) == [64, 64, 3] and rec["label"] == -1
    # ...so decoding a record is decoding the source file.
    for rec, path in zip(recs[:50], faces64, strict=False):
        np.testing.assert_array_equal(decode_image(rec["image"]), np.asarray(Image.open(path).convert("RGB")))


def test_dataset_json_and_size(packed: Path, faces64: list[Path]) -> None:
    doc = json.loads((packed / "dataset.json").read_text())
    source_bytes = sum(p.stat().st_size for p in faces64)
    assert doc["version"] == 1
    assert (doc["resolution"], doc["count"], doc["channels"], doc["image_format"]) == (64, 1000, 3, "jpeg")
    assert doc["source_bytes"] == source_bytes and doc["meta"] == {"name": "faces64"}
    assert [s["count"] for s in doc["shards"]] == [300, 300, 300, 100]
    assert sorted(p.name for p in packed.iterdir()) == ["dataset.json"] + [s["file"] for s in doc["shards"]]
    for s in doc["shards"]:
        assert (packed / s["file"]).stat().st_size == s["bytes"]
    info = verify_dataset(packed)
    assert info.total_bytes == sum(s["bytes"] for s in doc["shards"])
    assert info.total_bytes <= 1.1 * source_bytes  # The original tool needed ~19x.
    assert not [p for p in packed.parent.iterdir() if p.name.endswith(".tmp")]


def test_verify_detects_a_flipped_byte(packed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(packed, copy)
    verify_dataset(copy)
    shard = copy / "shard-00002.tfrecord"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"shard-00002\.tfrecord"):
        verify_dataset(copy)
    shard.unlink()
    with pytest.raises(DatasetError, match=r"shard-00002\.tfrecord.*missing"):
        verify_dataset(copy)


def test_load_info_refuses_what_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset.json"):
        load_info(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json is unreadable"):
        load_info(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"version": 2}))
    with pytest.raises(DatasetError, match="version 2"):
        load_info(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"version": 1, "resolution": 64}))
    with pytest.raises(DatasetError, match="invalid") as exc:
        load_info(tmp_path)
    assert "\n" not in str(exc.value)


# ----------------------------------------------------------------------------------------------
# Refusals: one line naming the file, nothing written


def _make_bad(kind: str, face: Path, shared_data: Path, src: Path) -> str:
    rgb = Image.open(face).convert("RGB")
    if kind == "non_square":
        rgb.crop((0, 0, 64, 48)).save(src / "bad.png")
        return r"bad\.png is 64x48 \(not square\)"
    if kind == "non_power_of_two":
        rgb.resize((48, 48)).save(src / "bad.png")
        return r"bad\.png is 48x48 \(not a power of two"
    if kind == "mixed_sizes":
        shutil.copy(shared_data / "anime_faces_256/00.png", src / "bad.png")
        return r"bad\.png is 256x256 \(most images are 64x64\)"
    if kind == "grayscale_among_rgb":
        rgb.convert("L").save(src / "bad.jpg")
        return r"bad\.jpg is grayscale \(most images are RGB\)"
    if kind == "rgba":
        rgb.convert("RGBA").save(src / "bad.png")
        return r"bad\.png has 4 channels"
    if kind == "truncated_jpeg":
        (src / "bad.jpg").write_bytes(face.read_bytes()[:1500])
        return r"bad\.jpg is corrupt \(.*truncated"
    if kind == "zero_bytes":
        (src / "bad.jpg").write_bytes(b"")
        return r"bad\.jpg is unreadable"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "non_square",
        "non_power_of_two",
        "mixed_sizes",
        "grayscale_among_rgb",
        "rgba",
        "truncated_jpeg",
        "zero_bytes",
    ],
)
def test_refusals_name_the_file_and_write_nothing(
    kind: str, faces64: list[Path], shared_data: Path, tmp_path: Path
) -> None:
    src = small_folder(faces64, tmp_path)
    pattern = _make_bad(kind, faces64[-1], shared_data, src)
    with pytest.raises(DatasetError, match=rf"^1 image cannot be packed: {pattern}") as exc:
        pack_folder(src, tmp_path / "out")
    assert "\n" not in str(exc.value)
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


def test_refusal_lists_every_file_then_truncates(faces64: list[Path], tmp_path: Path) -> None:
    src = small_folder(faces64, tmp_path, n=3)
    face = Image.open(faces64[0])
    for i in range(13):
        face.crop((0, 0, 64, 32)).save(src / f"wide{i:02d}.png")
    (src / "empty.jpg").write_bytes(b"")
    with pytest.raises(DatasetError) as exc:
        pack_folder(src, tmp_path / "out")
    message = str(exc.value)
    assert message.startswith("14 images cannot be packed: empty.jpg is unreadable")
    assert "wide08.png is 64x32 (not square)" in message and "wide09.png" not in message
    assert message.endswith("; and 4 more") and "\n" not in message
    assert [p.name for p in tmp_path.iterdir()] == ["src"]


def test_missing_and_empty_source_folders(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nowhere does not exist"):
        pack_folder(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match=r"empty holds no images"):
        pack_folder(tmp_path / "empty", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_existing_output_is_never_overwritten(faces64: list[Path], tmp_path: Path) -> None:
    src = small_folder(faces64, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match=r"out already exists and is not empty"):
        pack_folder(src, out)
    assert [p.name for p in out.iterdir()] == ["precious.txt"]
    (out / "precious.txt").unlink()
    info = pack_folder(src, out)  # An empty folder is fine to fill.
    assert info.count == 6 and (out / "dataset.json").is_file()


# ----------------------------------------------------------------------------------------------
# Formats


def test_keep_mode_re_encodes_what_tf_data_cannot_read_exactly(faces64: list[Path], tmp_path: Path) -> None:
    src = small_folder(faces64, tmp_path, n=2)
    rgb = Image.open(faces64[2]).convert("RGB")
    rgb.save(src / "c.bmp")
    rgb.save(src / "d.webp", lossless=True)
    rgb.convert("CMYK").save(src / "e_cmyk.jpg")
    rgb.convert("P").save(src / "f_palette.png")
    info = pack_folder(src, tmp_path / "out")
    assert (info.count, info.image_format) == (6, "jpeg+png")
    files = sorted(src.iterdir())
    recs = records_of(tmp_path / "out")
    kept = [rec["image"] == path.read_bytes() for rec, path in zip(recs, files, strict=True)]
    assert kept == [True, True, False, False, False, False]
    assert all(rec["image"].startswith(b"\x89PNG") for rec in recs[2:])
    batch = one_batch(make_dataset(tmp_path / "out", 64, 6, shuffle_buffer=0, repeat=False))
    np.testing.assert_array_equal(batch, to_net(np.stack([load_image(p, 3) for p in files])))


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_re_encoding(fmt: str, shared_data: Path, tmp_path: Path) -> None:
    files = sorted((shared_data / "anime_faces_256").glob("*.png"))[:4]
    src = tmp_path / "src"
    src.mkdir()
    for p in files:
        shutil.copy(p, src / p.name)
    info = pack_folder(src, tmp_path / "out", image_format=fmt, jpeg_quality=90)
    assert (info.resolution, info.image_format, info.count) == (256, fmt, 4)
    decoded = np.stack([decode_image(rec["image"]) for rec in records_of(tmp_path / "out")])
    original = np.stack([load_image(p) for p in files])
    if fmt == "png":
        np.testing.assert_array_equal(decoded, original)
    else:
        assert np.abs(decoded.astype(int) - original).mean() < 3


def test_grayscale_dataset(shared_data: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    gray = Image.open(shared_data / "human_faces/skimage/camera_gray.png")
    for i, box in enumerate([(0, 0, 256, 256), (256, 256, 512, 512)]):
        gray.crop(box).save(src / f"g{i}.png")
    info = pack_folder(src, tmp_path / "out")
    assert (info.channels, info.image_format) == (1, "png")
    batch = one_batch(make_dataset(tmp_path / "out", 128, 2, shuffle_buffer=0, repeat=False))
    expected = np_box_down(np.stack([load_image(p) for p in sorted(src.iterdir())]), 2)
    np.testing.assert_array_equal(batch, to_net(expected))


def test_pack_arrays_shares_the_writer(tmp_path: Path, sources: np.ndarray) -> None:
    images = sources[:10, :32, :32]
    info = pack_arrays(images, tmp_path / "a", shard_size=4, meta={"synthetic": {"seed": 1}})
    assert [s.count for s in info.shards] == [4, 4, 2] and info.source_bytes == images.nbytes
    assert load_info(tmp_path / "a").meta == {"synthetic": {"seed": 1}}
    verify_dataset(tmp_path / "a")
    batch = one_batch(make_dataset(tmp_path / "a", 32, 10, shuffle_buffer=0, repeat=False))
    np.testing.assert_array_equal(batch, to_net(images))  # PNG: lossless.
    # Any iterable works, and the same input gives byte-identical shards.
    again = pack_arrays(iter(list(images)), tmp_path / "b", shard_size=4)
    assert [s.sha256 for s in again.shards] == [s.sha256 for s in info.shards]


@pytest.mark.parametrize(
    ("images", "pattern"),
    [
        (
            [np.zeros((8, 8, 3), np.uint8)] * 3 + [np.zeros((16, 16, 3), np.uint8)],
            r"image 3 has shape \(16, 16, 3\)",
        ),
        ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)], r"image 1 is float32"),
        (np.zeros((2, 12, 12, 3), np.uint8), r"image 0 is 12x12 \(not a power of two"),
        ([], r"no images to pack"),
    ],
    ids=["mixed", "dtype", "size", "empty"],
)
def test_pack_arrays_refusals_leave_nothing(images, pattern: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=pattern):
        pack_arrays(images, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Reader


def test_make_dataset_at_stored_resolution_equals_pillow(packed: Path, sources: np.ndarray) -> None:
    ds = make_dataset(packed, 64, 1000, shuffle_buffer=0, repeat=False)
    assert ds.element_spec.shape.as_list() == [1000, 64, 64, 3] and ds.element_spec.dtype == tf.float32
    batches = [b.numpy() for b in ds]
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0], to_net(sources))
    assert batches[0].min() >= -1 and batches[0].max() <= 1


@pytest.mark.parametrize("resolution", [32, 8, 4])
def test_make_dataset_lower_resolutions_are_box_filtered(
    packed: Path, sources: np.ndarray, resolution: int
) -> None:
    batch = one_batch(make_dataset(packed, resolution, 200, shuffle_buffer=0, repeat=False))
    assert batch.shape == (200, resolution, resolution, 3)
    np.testing.assert_array_equal(batch, to_net(np_box_down(sources[:200], 64 // resolution)))


def test_make_dataset_refuses_resolutions_it_cannot_make(packed: Path) -> None:
    for bad in (48, 128, 0):
        with pytest.raises(DatasetError, match=rf"resolution {bad} .*faces64"):
            make_dataset(packed, bad, 4)


def test_make_dataset_shuffles_repeats_and_is_seeded(packed: Path) -> None:
    def take(seed: int) -> np.ndarray:
        ds = make_dataset(packed, 8, 256, seed=seed, shuffle_buffer=1000, mirror=True)
        return np.stack([b.numpy() for b in ds.take(5)])  # 1280 > 1000: needs repeat.

    a, b, c = take(1), take(1), take(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    ordered = one_batch(make_dataset(packed, 8, 256, shuffle_buffer=0, repeat=False))
    assert not np.array_equal(a[0], ordered)


def test_uncached_and_worker_shares_hold_the_same_images(packed: Path) -> None:
    """Decoding after the shuffle (no cache) changes no batch; each worker's `keep` rows of a batch are
    exactly those rows of the whole batch, mirrored alike, and the shares cover the batch."""
    def take(**kwargs) -> np.ndarray:
        ds = make_dataset(packed, 16, 64, seed=3, shuffle_buffer=500, mirror=True, **kwargs)
        return np.stack([b.numpy() for b in ds.take(20)])  # 1280 images: reshuffled repeats

    whole = take()
    np.testing.assert_array_equal(take(cache=False), whole)
    shares = [worker_rows(np.arange(32), workers=2, index=w, local_replicas=2, accumulate=2) for w in (0, 1)]
    assert sorted(np.concatenate(shares)) == list(range(64))
    for rows in shares:
        np.testing.assert_array_equal(take(cache=False, keep=rows), whole[:, rows])
        np.testing.assert_array_equal(take(keep=rows), whole[:, rows])


def test_mirror_flips_some_images(packed: Path) -> None:
    plain = one_batch(make_dataset(packed, 16, 200, shuffle_buffer=0, repeat=False))
    mirrored = one_batch(make_dataset(packed, 16, 200, shuffle_buffer=0, repeat=False, mirror=True))
    same = np.all(mirrored == plain, axis=(1, 2, 3))
    flipped = np.all(mirrored == plain[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | flipped)
    assert 60 < flipped.sum() < 140


# ----------------------------------------------------------------------------------------------
# Scaling and the lod fade


def test_downscale_upscale_match_numpy(sources: np.ndarray) -> None:
    x = sources[:4].astype(np.float32)
    mean2 = x.reshape(4, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(downscale(x, 2).numpy(), mean2, rtol=1e-6)
    np.testing.assert_allclose(
        downscale(sources[:4], 4).numpy(), x.reshape(4, 16, 4, 16, 4, 3).mean(axis=(2, 4)), rtol=1e-6
    )  # uint8 input is cast, factor 4 = the 2x2 filter twice.
    np.testing.assert_array_equal(upscale(mean2, 2).numpy(), mean2.repeat(2, axis=1).repeat(2, axis=2))
    np.testing.assert_array_equal(downscale(x, 1).numpy(), x)


def test_fade_lod(sources: np.ndarray) -> None:
    x = to_net(sources[:4])
    y = x.reshape(4, 32, 2, 32, 2, 3).mean(axis=(2, 4)).repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(fade_lod(x, tf.constant(0.0)).numpy(), x)
    np.testing.assert_allclose(fade_lod(x, tf.constant(1.0)).numpy(), y, atol=1e-6)
    np.testing.assert_allclose(fade_lod(x, 0.25).numpy(), 0.75 * x + 0.25 * y, atol=1e-6)
    traced = tf.function(fade_lod)  # t stays a tensor inside the traced training step.
    np.testing.assert_allclose(traced(x, tf.constant(0.6)).numpy(), 0.4 * x + 0.6 * y, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# CLI


def test_cli_summary_and_refusal(faces64: list[Path], tmp_path: Path, capsys) -> None:
    src = small_folder(faces64, tmp_path)
    assert main([str(src), str(tmp_path / "out"), "--shard-size", "4"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("packed 6 images at 64x64x3 (jpeg)") and "2 shards" in out and "x the source" in out
    assert main([str(src), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: output") and err.count("\n") == 1


@pytest.mark.slow
def test_cli_as_module_exits_1_without_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "stylegan_exp.data.records", str(tmp_path / "missing"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert run.returncode == 1
    assert "missing does not exist" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists()
