"""Non-square datasets: dataset.aspect parsed and checked at start-up, rectangles packed, refused and read
back at every lower resolution with their aspect; square datasets' files unchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import compose_config

from stylegan_exp.aspect import SQUARE, Aspect, AspectError, aspect_of, parse_aspect
from stylegan_exp.config import ConfigError, to_object
from stylegan_exp.config_checks import check_values
from stylegan_exp.data import records
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.images import save_image
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.data.writer import pack_arrays, pack_folder


@pytest.mark.parametrize(("text", "aspect"), [("1:1", SQUARE), ("1:2", Aspect(1, 2)), (" 2:1", Aspect(2, 1)),
                                              ("1:4", Aspect(1, 4)), ("4:1", Aspect(4, 1))])
def test_supported_aspects_parse(text, aspect):
    assert parse_aspect(text) == aspect


@pytest.mark.parametrize("text", ["3:4", "2:4", "1:3", "1", "1:2:3", "a:b", "0:1", "-1:2", "", "1:8"])
def test_unsupported_aspect_is_one_line_naming_the_supported(text):
    with pytest.raises(AspectError) as info:
        parse_aspect(text)
    message = str(info.value)
    assert "\n" not in message and f"dataset.aspect={text}" in message
    assert "1:1, 1:2, 2:1, 1:4, 4:1" in message


def test_sizes_keep_the_short_side():
    portrait = parse_aspect("1:2")
    assert portrait.size(64) == (64, 128) and portrait.shape(64) == (128, 64)
    assert portrait.describe(16) == "16×32" and SQUARE.describe(16) == "16²"
    assert aspect_of(32, 64) == portrait and aspect_of(64, 16) == Aspect(4, 1)
    assert aspect_of(48, 64) is None and aspect_of(32, 32) == SQUARE


def test_bad_aspect_fails_at_start_up_in_one_line():
    cfg = to_object(compose_config("train", "+experiment=tiny", "dataset.aspect=3:4"))
    with pytest.raises(ConfigError, match=r"^dataset\.aspect=3:4 is not supported \(supported: 1:1, 1:2"):
        check_values(cfg)


def test_stylegan3_refuses_rectangles_naming_why():
    cfg = to_object(compose_config("train", "+experiment=tiny_stylegan3", "dataset.aspect=1:2"))
    with pytest.raises(ConfigError, match="model=stylegan3 trains squares only"):
        check_values(cfg)
    check_values(to_object(compose_config("train", "+experiment=tiny_stylegan3")))


def _portraits(count: int, width: int = 16, height: int = 32) -> np.ndarray:
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (count, height, width, 3)).astype(np.uint8)


def test_rectangles_pack_and_read_back_at_every_level(tmp_path):
    images = _portraits(6)
    info = pack_arrays(images, tmp_path / "ds", aspect=parse_aspect("1:2"))
    document = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert (document["resolution"], document["aspect"]) == (16, "1:2")
    assert load_info(tmp_path / "ds").aspect == "1:2" and info.resolution == 16
    (full,) = make_dataset(tmp_path / "ds", 16, 6, shuffle_buffer=1, repeat=False).take(1)
    got = np.rint((full.numpy() + 1) * 127.5).astype(np.uint8)
    assert got.shape == (6, 32, 16, 3)
    np.testing.assert_array_equal(got, images)
    for res in (8, 4):
        (low,) = make_dataset(tmp_path / "ds", res, 2, shuffle_buffer=1, repeat=False, cache=False).take(1)
        assert low.shape == (2, 2 * res, res, 3)
        box = images[:2].astype(np.float32)
        for _ in range((16 // res).bit_length() - 1):
            box = np.round(box.reshape(2, box.shape[1] // 2, 2, box.shape[2] // 2, 2, 3).mean(axis=(2, 4)))
        np.testing.assert_allclose((low.numpy() + 1) * 127.5, box, atol=1e-3)


def test_square_dataset_json_has_no_aspect_key(tmp_path):
    pack_arrays(_portraits(2, 16, 16), tmp_path / "sq")
    assert "aspect" not in json.loads((tmp_path / "sq" / "dataset.json").read_text())
    assert load_info(tmp_path / "sq").aspect == "1:1"


def test_a_bad_recorded_aspect_is_a_dataset_error(tmp_path):
    pack_arrays(_portraits(2), tmp_path / "ds", aspect=parse_aspect("1:2"))
    path = tmp_path / "ds" / "dataset.json"
    path.write_text(path.read_text().replace('"1:2"', '"3:4"'))
    with pytest.raises(DatasetError, match="aspect=3:4 is not supported"):
        load_info(tmp_path / "ds")


def test_the_tool_refuses_images_of_another_aspect_naming_each(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i, image in enumerate(_portraits(3)):
        save_image(image, src / f"p{i}.png")
    save_image(_portraits(1, 16, 16)[0], src / "square.png")
    save_image(_portraits(1, 24, 48)[0], src / "odd.png")
    save_image(_portraits(1, 32, 64)[0], src / "big.png")
    assert records.main([str(src), str(tmp_path / "out"), "--aspect", "1:2"]) == 1
    err = capsys.readouterr().err
    assert "square.png is 16x16 (not 1:2, width:height)" in err
    assert "odd.png is 24x48 (short side not a power of two >= 4)" in err
    assert "big.png is 32x64 (most images are 16x32)" in err
    assert not (tmp_path / "out").exists()
    for name in ("square.png", "odd.png", "big.png"):
        (src / name).unlink()
    assert records.main([str(src), str(tmp_path / "out"), "--aspect", "1:2"]) == 0
    assert "packed 3 images at 16x32x3" in capsys.readouterr().out
    assert records.main([str(src), str(tmp_path / "out2"), "--aspect", "3:4"]) == 1
    assert "--aspect=3:4 is not supported" in capsys.readouterr().err


def test_pack_folder_square_default_refuses_rectangles(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    save_image(_portraits(1)[0], src / "p.png")
    with pytest.raises(DatasetError, match=r"p\.png is 16x32 \(not square\)"):
        pack_folder(src, tmp_path / "out")


@pytest.mark.parametrize("overrides", [["dataset.aspect=1:2"], ["dataset=synthetic_portrait"]])
def test_the_demo_composes_at_1_2_into_its_own_synthetic_folder(overrides):
    cfg = to_object(compose_config("train", "+experiment=demo", *overrides))
    check_values(cfg)
    assert cfg.dataset.aspect == "1:2" and cfg.dataset.path == "datasets/synthetic-64-1x2-n4000-seed0"
    assert to_object(compose_config("train", "+experiment=demo")).dataset.path == (
        "datasets/synthetic-64-n4000-seed0")


def test_labelled_synthetic_portraits_get_their_own_folder():
    square = to_object(compose_config("train", "dataset=synthetic_tags"))
    portrait = to_object(compose_config("train", "dataset=synthetic_tags", "dataset.aspect=1:2"))
    assert square.dataset.path == "datasets/synthetic-64-n4000-seed0-tags"
    assert portrait.dataset.path == "datasets/synthetic-64-1x2-n4000-seed0-tags"
