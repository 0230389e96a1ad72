"""crop: faces found in the TADNE portraits with lbpcascade_animeface; the cascade download is
checksummed and cached."""

import numpy as np
import pytest

from stylegan_exp.data.crop import CASCADE_SHA256, cascade_file, square_box
from stylegan_exp.data.crop import run as crop
from stylegan_exp.data.images import read_image_info
from stylegan_exp.data.manifest import Manifest, StageError
from stylegan_exp.data.prepare_config import CropConfig, RunOptions


def test_square_box_stays_inside_the_image():
    assert square_box((10, 10, 20, 20), 0.5, 100, 100) == (0, 0, 40)
    assert square_box((90, 40, 20, 10), 0.0, 100, 60) == (80, 35, 20)
    assert square_box((0, 0, 100, 100), 1.0, 120, 80)[2] == 80


@pytest.mark.slow
def test_crop_finds_faces_in_tadne_portraits(tmp_path, shared_data):
    cfg = CropConfig(cascade=str(shared_data / "cascade" / "lbpcascade_animeface.xml"), min_face_size=64)
    result = crop(
        shared_data / "anime_full" / "tadne_hysts", tmp_path / "out", cfg, RunOptions(progress=False)
    )
    entries = Manifest.read(result.manifest)
    sources_with_faces = {e["source"] for e in entries if e["kept"]}
    assert len(sources_with_faces) >= 30  # 36 portraits, a few missed by this detector.
    for e in entries:
        if e["kept"]:
            info = read_image_info(tmp_path / "out" / e["output"])
            assert info.width == info.height >= 64
    assert (tmp_path / "out" / "contact_sheet.png").is_file()
    big = CropConfig(cascade=cfg.cascade, min_face_size=2000)
    none = crop(
        shared_data / "anime_full" / "tadne_hysts", tmp_path / "none", big, RunOptions(progress=False)
    )
    # The portraits have faces, all smaller than 2000 px: face-too-small, never a kept small face.
    assert none.kept == 0 and set(none.reasons) == {(False, "face-too-small"), (False, "no-face")}
    too_small = {e["source"] for e in Manifest.read(none.manifest) if e["reason"] == "face-too-small"}
    assert too_small >= sources_with_faces


def test_cascade_download_is_checked_and_cached(tmp_path, shared_data):
    source = shared_data / "cascade" / "lbpcascade_animeface.xml"
    cached = cascade_file(None, url=source.as_uri(), cache_dir=tmp_path)
    assert cached == tmp_path / "lbpcascade_animeface.xml"
    assert cascade_file(None, url="file:///nonexistent", cache_dir=tmp_path) == cached  # From cache.
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<opencv_storage/>")
    with pytest.raises(StageError, match=CASCADE_SHA256) as mismatch:
        cascade_file(None, url=bad.as_uri(), cache_dir=tmp_path / "other")
    assert not (tmp_path / "other" / "lbpcascade_animeface.xml").exists()
    # Offline (or behind a proxy's page): one line telling how to give the file instead.
    with pytest.raises(StageError) as offline:
        cascade_file(None, url=(tmp_path / "unreachable.xml").as_uri(), cache_dir=tmp_path / "other")
    for error in (mismatch, offline):
        assert "crop.cascade=PATH" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(StageError, match="missing.xml"):
        cascade_file(str(tmp_path / "missing.xml"))


def test_crop_on_a_planted_blank_image_drops_it(tmp_path, shared_data):
    from stylegan_exp.data.images import save_image

    src = tmp_path / "src"
    src.mkdir()
    save_image(np.full((128, 128, 3), 255, np.uint8), src / "blank.png")
    cfg = CropConfig(cascade=str(shared_data / "cascade" / "lbpcascade_animeface.xml"), min_face_size=32)
    result = crop(src, tmp_path / "out", cfg, RunOptions(workers=1, progress=False))
    assert result.dropped == 1 and result.kept == 0
