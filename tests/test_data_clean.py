"""clean: every bad-file class planted beside real images gets its own reason; the rest is sRGB."""

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from stylegan_exp.data.clean import png_crc_error
from stylegan_exp.data.clean import run as clean
from stylegan_exp.data.images import decode_srgb, load_image
from stylegan_exp.data.manifest import Manifest
from stylegan_exp.data.prepare_config import CleanConfig, RunOptions

OPTS = RunOptions(workers=1, progress=False, contact_sheet=False)


def _png(array: np.ndarray, **kw) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **kw)
    return buffer.getvalue()


def _noise(seed: int, size: int = 96, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (size, size, channels) if channels > 1 else (size, size)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def plant_bad_files(folder: Path, shared_data: Path) -> dict[str, str]:
    """Real good images plus one file per bad class; returns file name → expected reason."""
    real = sorted((shared_data / "anime_faces_256").glob("*.png"))[:3]
    expected = {}
    for path in real:
        shutil.copy(path, folder / path.name)
        expected[path.name] = "ok"
    jpeg = (shared_data / "anime_full" / "tadne_hysts" / "tadne_r0c1.jpg").read_bytes()
    good_png = real[0].read_bytes()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "garbage.jpg").write_bytes(b"this is not an image at all" * 10)
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    crc = bytearray(good_png)
    idat = crc.find(b"IDAT")
    length = int.from_bytes(crc[idat - 4 : idat], "big")
    crc[idat + 4 + length] ^= 0xFF  # Break the IDAT CRC only: Pillow still decodes the pixels.
    (folder / "bad_crc.png").write_bytes(bytes(crc))
    (folder / "flat.png").write_bytes(_png(np.full((96, 96, 3), 200, np.uint8)))
    (folder / "gray_l.png").write_bytes(_png(_noise(1, channels=1)))
    gray = _noise(2, channels=1)
    (folder / "gray_rgb.png").write_bytes(_png(np.repeat(gray[:, :, None], 3, axis=2)))
    (folder / "tiny.png").write_bytes(_png(_noise(3, size=32)))
    (folder / "zz_duplicate.png").write_bytes(_png(np.asarray(Image.open(real[1]).convert("RGB"))))
    expected.update(
        {
            "empty.jpg": "empty",
            "garbage.jpg": "unreadable",
            "truncated.jpg": "truncated",
            "bad_crc.png": "png-crc",
            "flat.png": "monochrome",
            "gray_l.png": "grayscale",
            "gray_rgb.png": "grayscale",
            "tiny.png": "too-small",
            "zz_duplicate.png": "duplicate",
        }
    )
    return expected


def test_every_bad_class_gets_its_reason(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    expected = plant_bad_files(src, shared_data)
    result = clean(src, tmp_path / "out", CleanConfig(), OPTS)
    got = {e["source"]: e["reason"] for e in Manifest.read(result.manifest)}
    assert got == expected
    assert result.kept == 3
    for name in ("00.png", "01.png", "02.png"):
        out = load_image(tmp_path / "out" / name)
        assert out.shape[2] == 3 and out.dtype == np.uint8
    dup = next(e for e in Manifest.read(result.manifest) if e["source"] == "zz_duplicate.png")
    assert dup["of"] == "01.png"


def test_png_crc_check_ignores_good_files(shared_data):
    assert png_crc_error((shared_data / "anime_faces_256" / "00.png").read_bytes()) is None
    assert png_crc_error(b"\xff\xd8 not a png") is None


def test_srgb_conversion_of_cmyk_16bit_alpha_and_icc():
    rgb = _noise(4, size=16)
    cmyk = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(cmyk, format="JPEG", quality=100)
    out, info = decode_srgb(cmyk.getvalue())
    assert info.mode == "CMYK" and out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 12

    wide = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257).astype(np.uint16)
    out, info = decode_srgb(_png(wide))  # 16-bit grayscale PNG: scaled, not clipped at 255.
    assert info.mode.startswith("I") and out[:, :, 0].ravel().tolist() == list(range(256))

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :4, 3] = 255  # Left half opaque red, right half transparent.
    out, _ = decode_srgb(_png(rgba), background=(0, 0, 255))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 7].tolist() == [0, 0, 255]

    srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out, _ = decode_srgb(_png(rgb, icc_profile=srgb_profile))
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 2


@pytest.mark.parametrize("workers", [1, 2])
def test_resume_after_a_limited_run_gives_the_same_result(tmp_path, shared_data, workers):
    src = tmp_path / "src"
    src.mkdir()
    plant_bad_files(src, shared_data)
    once = clean(src, tmp_path / "once", CleanConfig(), OPTS)
    opts = RunOptions(workers=workers, limit=4, progress=False, contact_sheet=False)
    clean(src, tmp_path / "twice", CleanConfig(), opts)
    partial = Manifest.read(tmp_path / "twice" / "manifest.jsonl")
    assert len(partial) == 4
    again = clean(src, tmp_path / "twice", CleanConfig(), RunOptions(workers=workers, progress=False))
    assert (tmp_path / "twice" / "manifest.jsonl").read_text() == once.manifest.read_text()
    outputs = sorted(p.name for p in (tmp_path / "once").glob("*.png"))
    assert outputs == sorted(
        p.name for p in (tmp_path / "twice").glob("*.png") if p.name != "contact_sheet.png"
    )
    for name in outputs:
        assert (tmp_path / "once" / name).read_bytes() == (tmp_path / "twice" / name).read_bytes()
    assert again.processed == 8 and (tmp_path / "twice" / "contact_sheet.png").is_file()
