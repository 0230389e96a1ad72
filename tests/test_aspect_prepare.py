"""prepare.py aspect=1:2: face boxes grown to portraits that keep the face, resized (or letterboxed) to the
aspect and packed as a 1:2 dataset from the shared illustrations; squares keep their settings records."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import compose_config, size_of

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.data.manifest import StageError
from stylegan_exp.data.prepare import run_prepare
from stylegan_exp.data.prepare_config import ResizeConfig
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.data.resize import make_aspect, resize_image

PORTRAIT = parse_aspect("1:2")


def test_aspect_box_grows_the_face_square_downwards_inside_the_image():
    from stylegan_exp.data.crop import aspect_box

    # a 100² face box high in a 1000² image: its 1.5× square (150), then 150 wide × 300 tall below it
    assert aspect_box((450, 100, 100, 100), 0.25, 1000, 1000, PORTRAIT) == (425, 75, 150, 300)
    # near the bottom: shifted up to stay inside, the face still in it
    x, y, w, h = aspect_box((450, 850, 100, 100), 0.25, 1000, 1000, PORTRAIT)
    assert (w, h) == (150, 300) and y + h == 1000 and y <= 850 and y + h >= 950
    # an image too short for the portrait: shrunk to fit, never padded
    x, y, w, h = aspect_box((100, 20, 100, 100), 0.25, 400, 200, PORTRAIT)
    assert (w, h) == (100, 200) and y == 0 and x <= 100 and x + w >= 200
    # landscape: the face centred
    assert aspect_box((450, 450, 100, 100), 0.25, 1000, 1000, parse_aspect("2:1")) == (350, 425, 300, 150)


def test_resize_crops_or_letterboxes_to_the_aspect():
    rgb = np.arange(60 * 40 * 3, dtype=np.uint8).reshape(60, 40, 3)
    assert make_aspect(rgb, "crop", [0, 0, 0], PORTRAIT).shape == (60, 30, 3)
    padded = make_aspect(rgb, "pad", [255, 0, 255], PORTRAIT)
    assert padded.shape == (80, 40, 3)
    np.testing.assert_array_equal(padded[:10], 255 * np.ones((10, 40, 1)) * [1, 0, 1])
    np.testing.assert_array_equal(padded[10:70], rgb)
    out = resize_image(rgb, ResizeConfig(resolution=16, aspect="1:2"))
    assert out.shape == (32, 16, 3)


def test_bad_aspect_is_one_line_before_any_work(tmp_path):
    with pytest.raises(StageError, match=r"^aspect=3:4 is not supported \(supported: 1:1, 1:2"):
        run_prepare(compose_config("prepare", "aspect=3:4", f"source={tmp_path}",
                                   f"work_dir={tmp_path / 'w'}"))


@pytest.mark.slow
def test_prepare_makes_a_portrait_dataset_from_the_illustrations(tmp_path, shared_data):
    cfg = compose_config(
        "prepare", "aspect=1:2", "stages=[crop,resize,pack]",
        f"source={shared_data / 'anime_full' / 'tadne_hysts'}",
        f"crop.cascade={shared_data / 'cascade' / 'lbpcascade_animeface.xml'}", "crop.min_face_size=64",
        "resize.resolution=32", f"work_dir={tmp_path / 'work'}", f"dataset_dir={tmp_path / 'portraits'}",
        "run.workers=1", "run.progress=false")
    crop, resize, pack = run_prepare(cfg)
    assert crop.kept >= 20 and resize.kept == crop.kept and pack.kept == crop.kept
    for line in map(json.loads, (tmp_path / "work" / "crop" / "manifest.jsonl").read_text().splitlines()):
        if line["kept"]:
            x, y, w, h = line["box"]
            assert h == 2 * w and x >= 0 and y >= 0 and x + w <= 512 and y + h <= 512
    resized = [p for p in (tmp_path / "work" / "resize").glob("*.png") if p.name != "contact_sheet.png"]
    assert len(resized) == crop.kept and {size_of(p) for p in resized} == {(32, 64)}
    info = load_info(tmp_path / "portraits")
    assert (info.resolution, info.aspect, info.count) == (32, "1:2", crop.kept)
    (batch,) = make_dataset(tmp_path / "portraits", 16, 4, repeat=False).take(1)
    assert batch.shape == (4, 32, 16, 3)
    settings = json.loads((tmp_path / "work" / "crop" / "settings.json").read_text())["settings"]
    assert settings["crop.aspect"] == "1:2"


def test_square_stage_settings_have_no_aspect_key(tmp_path, shared_data):
    cfg = compose_config("prepare", "stages=[resize]", f"source={shared_data / 'anime_faces_256'}",
                         "resize.resolution=16", f"work_dir={tmp_path}", "run.workers=1",
                         "run.progress=false", "run.contact_sheet=false")
    run_prepare(cfg)
    assert not any("aspect" in k for k in json.loads((tmp_path / "resize" / "settings.json").read_text())
                   ["settings"])
