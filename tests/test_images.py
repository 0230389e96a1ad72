"""The one image loader, on real files from ../shared/data and on synthesized bad ones."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylegan_exp.data import images
from stylegan_exp.data.images import ImageError, decode_image, encode_image, load_image, read_image_info, save_image


@pytest.fixture(scope="module")
def face_jpeg(shared_data: Path) -> Path:
    return sorted((shared_data / "anime_faces_64").glob("*.jpg"))[0]


def test_read_image_info_real_files(shared_data: Path, face_jpeg: Path) -> None:
    info = read_image_info(face_jpeg)
    assert (info.path, info.width, info.height, info.channels, info.format, info.mode) == (
        face_jpeg,
        64,
        64,
        3,
        "JPEG",
        "RGB",
    )
    gray = read_image_info(shared_data / "human_faces/skimage/camera_gray.png")
    assert (gray.width, gray.height, gray.channels, gray.format) == (512, 512, 1, "PNG")
    rgba = read_image_info(shared_data / "anime_full/waifu2x/miku_small_rgba.png")
    assert (rgba.width, rgba.height, rgba.channels) == (228, 159, 4)


def test_read_image_info_modes(tmp_path: Path, face_jpeg: Path) -> None:
    rgb = Image.open(face_jpeg).convert("RGB")
    rgb.convert("CMYK").save(tmp_path / "cmyk.jpg")
    rgb.convert("P").save(tmp_path / "palette.png")
    rgb.convert("P").save(tmp_path / "palette_t.png", transparency=0)
    rgb.convert("LA").save(tmp_path / "la.png")
    channels = {p.name: read_image_info(p).channels for p in tmp_path.iterdir()}
    assert channels == {"cmyk.jpg": 3, "palette.png": 3, "palette_t.png": 4, "la.png": 2}
    # The default decode gives exactly the channels the header promised.
    assert all(load_image(tmp_path / name).shape[2] == c for name, c in channels.items())


@pytest.mark.parametrize("content", [b"", b"not an image at all"], ids=["empty", "text"])
def test_unreadable_files_name_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    for call in (read_image_info, load_image):
        with pytest.raises(ImageError, match="broken.jpg") as exc:
            call(path)
        assert "\n" not in str(exc.value)


def test_truncated_jpeg_header_reads_but_decode_fails(tmp_path: Path, face_jpeg: Path) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(face_jpeg.read_bytes()[: face_jpeg.stat().st_size // 2])
    assert read_image_info(path).width == 64  # The header survives; only a full decode notices.
    with pytest.raises(ImageError, match=r"cut\.jpg.*truncated") as exc:
        load_image(path)
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError):  # ImageError is a ValueError, so callers may catch either.
        load_image(path)


def test_load_image_matches_pillow_and_converts(shared_data: Path, face_jpeg: Path) -> None:
    source = Image.open(face_jpeg)
    rgb = load_image(face_jpeg)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 64, 3)
    np.testing.assert_array_equal(rgb, np.asarray(source.convert("RGB")))
    np.testing.assert_array_equal(load_image(face_jpeg, channels=1)[:, :, 0], np.asarray(source.convert("L")))
    gray = load_image(shared_data / "human_faces/skimage/camera_gray.png")
    assert gray.shape == (512, 512, 1)
    as_rgb = load_image(shared_data / "human_faces/skimage/camera_gray.png", channels=3)
    assert as_rgb.shape == (512, 512, 3) and (as_rgb == gray).all()
    rgba = load_image(shared_data / "anime_full/waifu2x/miku_small_rgba.png")
    assert rgba.shape == (159, 228, 4)
    assert load_image(shared_data / "anime_full/waifu2x/miku_small_rgba.png", channels=3).shape == (
        159,
        228,
        3,
    )
    with pytest.raises(ValueError, match="channels"):
        load_image(face_jpeg, channels=5)


def test_encode_png_is_lossless_for_all_layouts(face_jpeg: Path) -> None:
    rgb = load_image(face_jpeg)
    gray = load_image(face_jpeg, channels=1)
    for array, expected in [(rgb, rgb), (gray, gray), (gray[:, :, 0], gray)]:
        data = encode_image(array, "png")
        assert data.startswith(b"\x89PNG")
        np.testing.assert_array_equal(decode_image(data), expected)


def test_encode_jpeg_is_close_and_quality_matters(face_jpeg: Path) -> None:
    rgb = load_image(face_jpeg)
    high, low = encode_image(rgb, "jpeg", jpeg_quality=95), encode_image(rgb, "jpg", jpeg_quality=20)
    assert high.startswith(b"\xff\xd8") and len(low) < len(high)
    error = np.abs(decode_image(high).astype(int) - rgb).mean()
    assert error < 3, error


@pytest.mark.parametrize(
    ("array", "fmt"),
    [
        (np.zeros((8, 8, 3), np.float32), "png"),
        (np.zeros((8, 8, 4), np.uint8), "png"),
        (np.zeros((8, 8, 3), np.uint8), "gif"),
    ],
    ids=["float", "rgba", "gif"],
)
def test_encode_rejects_what_it_cannot_store(array: np.ndarray, fmt: str) -> None:
    with pytest.raises(ValueError):
        encode_image(array, fmt)


def test_save_image_writes_by_suffix_and_replaces(tmp_path: Path, face_jpeg: Path) -> None:
    rgb = load_image(face_jpeg)
    save_image(rgb, tmp_path / "a.png")
    save_image(rgb, tmp_path / "b.JPEG")
    assert read_image_info(tmp_path / "a.png").format == "PNG"
    assert read_image_info(tmp_path / "b.JPEG").format == "JPEG"
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), rgb)
    save_image(rgb[::-1], tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), rgb[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.JPEG"]  # No temp files left.


def test_save_image_failure_keeps_the_old_file(tmp_path: Path, face_jpeg: Path, monkeypatch) -> None:
    rgb = load_image(face_jpeg)
    target = tmp_path / "a.png"
    save_image(rgb, target)
    before = target.read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(images.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_image(rgb[::-1], target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    with pytest.raises(ImageError, match=r"a\.tiff"):
        save_image(rgb, tmp_path / "a.tiff")
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
