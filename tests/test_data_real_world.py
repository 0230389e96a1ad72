"""Issue 13: what real image collections contain, planted beside real images from ../shared/data —
odd file names, broken links, EXIF rotation, transparency, single-colour images, huge headers, small
faces, photographs among illustrations — through every stage."""

import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TINY, compose_config
from PIL import Image

from stylegan_exp.data.clean import run as clean
from stylegan_exp.data.crop import run as crop
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.images import decode_srgb, load_image, read_image_info
from stylegan_exp.data.manifest import Manifest, stable_hash
from stylegan_exp.data.prepare import run_prepare
from stylegan_exp.data.prepare_config import (
    CleanConfig,
    CropConfig,
    PackConfig,
    PrepareConfig,
    ResizeConfig,
    RunOptions,
)
from stylegan_exp.data.resize import run as resize

OPTS = RunOptions(workers=1, progress=False, contact_sheet=False)
ODD_NAMES = [os.fsdecode(b"caf\xe9.jpg"), "with space.jpg", "ünïcödé 顔.jpg", "-leading-dash.jpg"]


def run_python(args: list[str], cwd: Path, text: bool = True) -> subprocess.CompletedProcess:
    """`python ARGS` with this checkout's package, as a user runs the entry points."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, *args], capture_output=True, text=text, env=env, cwd=cwd,
                          timeout=600)


def real_folder(folder: Path, files) -> Path:
    """A folder holding copies of real images, for planting files beside."""
    folder.mkdir()
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


def reasons(result) -> dict[str, str]:
    return {e["source"]: e["reason"] for e in Manifest.read(result.manifest)}


def cascade(shared_data: Path) -> str:
    return str(shared_data / "cascade" / "lbpcascade_animeface.xml")


def tadne(shared_data: Path, n: int) -> list[Path]:
    return sorted((shared_data / "anime_full" / "tadne_hysts").glob("*.jpg"))[1 : 1 + n]


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------
# File names


def test_any_file_name_through_every_stage(tmp_path, shared_data):
    """Non-UTF-8 bytes, spaces, unicode and a leading dash: every stage runs, every manifest records
    the name so that it reads back to the same bytes, and outputs keep the names."""
    src = tmp_path / "src"
    src.mkdir()
    for name, path in zip(ODD_NAMES, tadne(shared_data, len(ODD_NAMES)), strict=True):
        shutil.copy(path, src / name)
    cfg = PrepareConfig(
        source=str(src),
        stages=["select", "crop", "clean", "dedupe", "resize", "augment", "pack"],
        work_dir=str(tmp_path / "work"),
        dataset_dir=str(tmp_path / "dataset"),
        run=OPTS,
        crop=CropConfig(cascade=cascade(shared_data), min_face_size=64),
        resize=ResizeConfig(resolution=32),
        pack=PackConfig(image_format="png"),
    )
    results = run_prepare(cfg)
    assert results[-1].kept == len(ODD_NAMES)  # One face each, packed.
    for stage in ("select", "crop", "clean", "dedupe", "resize", "augment"):
        entries = Manifest.read(tmp_path / "work" / stage / "manifest.jsonl")
        assert {os.fsencode(e["source"]).split(b"_face")[0].rsplit(b".", 1)[0] for e in entries} == {
            os.fsencode(name).rsplit(b".", 1)[0] for name in ODD_NAMES
        }, stage
    faces = {os.fsencode(p.name) for p in (tmp_path / "work" / "resize").glob("*_face0.png")}
    assert b"caf\xe9_face0.png" in faces and b"-leading-dash_face0.png" in faces
    assert stable_hash(ODD_NAMES[0]) != stable_hash("caf\u00e9.jpg")  # The byte, not a guess at it.


def test_prepare_cli_takes_odd_names(tmp_path, shared_data):
    """prepare.py itself, with the source folder's name and the files' names all odd."""
    src = tmp_path / os.fsdecode(b"my caf\xe9 -src")
    src.mkdir()
    for name, path in zip(ODD_NAMES, sorted((shared_data / "anime_faces_256").glob("*.png")), strict=False):
        shutil.copy(path, src / name)
    done = run_python(
        [str(REPO / "prepare.py"), f"source='{src}'", "stages=[clean,resize]", "prepare/clean=default",
         f"work_dir='{tmp_path / 'work'}'", "resize.resolution=32", "run.workers=1", "run.progress=false",
         f"hydra.run.dir='{tmp_path / 'hydra'}'"],
        tmp_path, text=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    kept = {os.fsencode(p.name) for p in (tmp_path / "work" / "resize").glob("*.png")}
    kept.discard(b"contact_sheet.png")
    assert kept == {os.fsencode(name).replace(b".jpg", b".png") for name in ODD_NAMES}


# ----------------------------------------------------------------------------------------------
# Links


def test_broken_links_get_their_own_reason(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    faces = sorted((shared_data / "anime_faces_256").glob("*.png"))[:2]
    for path in faces:
        shutil.copy(path, src / path.name)
    (src / "dangling.png").symlink_to(tmp_path / "gone.png")
    (src / "loop.png").symlink_to(src / "loop.png")
    (src / "good_link.png").symlink_to(faces[0])
    got = reasons(clean(src, tmp_path / "clean", CleanConfig(), OPTS))
    assert got["dangling.png"] == got["loop.png"] == "broken-link"
    assert got["good_link.png"] == "duplicate" and got[faces[0].name] == "ok"
    from stylegan_exp.data.pack import run as pack
    from stylegan_exp.data.writer import pack_folder

    packed = reasons(pack(str(src), tmp_path / "ds", PackConfig(), OPTS))
    assert sorted(r for r in packed.values() if r != "packed") == ["broken-link", "broken-link"]
    with pytest.raises(DatasetError, match=r"dangling\.png is a broken link.*loop\.png is a broken link"):
        pack_folder(src, tmp_path / "strict")


# ----------------------------------------------------------------------------------------------
# Orientation


def _rotated_copy(original: Path, target: Path) -> None:
    """The upright image stored turned 90° anticlockwise with EXIF orientation 6 ("turn 90°
    clockwise to view"), as phones write portraits."""
    image = Image.open(original).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    image.transpose(Image.Transpose.ROTATE_90).save(target, quality=95, exif=exif)


def test_exif_orientation_is_applied_wherever_an_image_is_decoded(tmp_path, shared_data):
    portrait = tadne(shared_data, 1)[0]
    upright = load_image(portrait, 3).astype(int)
    src = tmp_path / "src"
    src.mkdir()
    _rotated_copy(portrait, src / "rotated.jpg")
    assert read_image_info(src / "rotated.jpg").orientation == 6
    for decoded in (load_image(src / "rotated.jpg", 3), decode_srgb((src / "rotated.jpg").read_bytes())[0]):
        assert decoded.shape == upright.shape and np.abs(decoded - upright).mean() < 4
    # crop detects and cuts the face of the upright image, as on the original.
    cfg = CropConfig(cascade=cascade(shared_data), min_face_size=64)
    rotated = Manifest.read(crop(src, tmp_path / "crop", cfg, OPTS).manifest)
    original_dir = tmp_path / "orig"
    original_dir.mkdir()
    shutil.copy(portrait, original_dir / "rotated.jpg")
    expected = Manifest.read(crop(original_dir, tmp_path / "crop_orig", cfg, OPTS).manifest)
    assert len(rotated) == len(expected) == 1  # Same face, up to the JPEG re-encoding of the copy.
    assert np.abs(np.subtract(rotated[0]["box"], expected[0]["box"])).max() <= 0.05 * expected[0]["box"][2]
    # clean and resize store it upright.
    clean(src, tmp_path / "clean", CleanConfig(), OPTS)
    assert np.abs(load_image(tmp_path / "clean" / "rotated.png").astype(int) - upright).mean() < 4
    resize(src, tmp_path / "resize", ResizeConfig(resolution=64), OPTS)
    small = np.asarray(Image.open(portrait).convert("RGB").resize((64, 64), Image.Resampling.LANCZOS), int)
    assert np.abs(load_image(tmp_path / "resize" / "rotated.png").astype(int) - small).mean() < 4
    # rank and invert load through the same loader.
    from stylegan_exp.sample.rank import load_for_network

    network = load_for_network(src / "rotated.jpg", 64, 3)
    assert np.abs((network + 1) * 127.5 - small).mean() < 4


def test_packed_rotated_jpeg_trains_upright(tmp_path, shared_data):
    """tf.data ignores EXIF: the dataset tool stores a rotated JPEG re-encoded, not as its bytes."""
    from stylegan_exp.data.reader import make_dataset
    from stylegan_exp.data.writer import pack_folder

    src = tmp_path / "src"
    src.mkdir()
    faces = sorted((shared_data / "anime_faces_64").glob("*.jpg"))[:2]
    shutil.copy(faces[0], src / "a.jpg")
    _rotated_copy(faces[1], src / "b.jpg")
    info = pack_folder(src, tmp_path / "ds")
    assert info.image_format == "jpeg+png"
    batch = next(iter(make_dataset(tmp_path / "ds", 64, 2, shuffle_buffer=0, repeat=False))).numpy()
    upright = load_image(faces[1], 3).astype(float) / 127.5 - 1
    assert np.abs(batch[1] - upright).mean() < 0.05


# ----------------------------------------------------------------------------------------------
# Transparency


def test_transparency_is_composited_alike_whichever_stage_decodes_first(tmp_path, shared_data):
    face = load_image(sorted((shared_data / "anime_faces_256").glob("*.png"))[0], 3)
    rgba = np.zeros((256, 256, 4), np.uint8)  # Transparent black around the face...
    rgba[32:224, 32:224, :3] = face[32:224, 32:224]
    rgba[32:224, 32:224, 3] = 255
    rgba[32:224, 28:32, 3] = 128  # ...and a half-transparent seam.
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(rgba).save(src / "cutout.png")
    via_crop_loader = load_image(src / "cutout.png", 3)
    via_clean, _ = decode_srgb((src / "cutout.png").read_bytes())
    np.testing.assert_array_equal(via_crop_loader, via_clean)
    assert via_clean[0, 0].tolist() == [255, 255, 255] and via_clean[100, 30].min() >= 127
    blue = load_image(src / "cutout.png", 3, background=(0, 0, 255))
    assert blue[0, 0].tolist() == [0, 0, 255]
    # prepare's crop uses clean.background: crop then clean equals clean alone.
    cfg = PrepareConfig(source=str(src), stages=["crop", "clean"], work_dir=str(tmp_path / "work"),
                        dataset_dir=str(tmp_path / "ds"), run=OPTS,
                        crop=CropConfig(cascade=cascade(shared_data), min_face_size=64, margin=1.0))
    results = run_prepare(cfg)
    assert results[0].kept >= 1
    (entry,) = [e for e in Manifest.read(results[0].manifest) if e["kept"]][:1]
    x, y, side = entry["box"]
    cropped = load_image(tmp_path / "work" / "clean" / entry["output"])
    np.testing.assert_array_equal(cropped, via_clean[y : y + side, x : x + side])


# ----------------------------------------------------------------------------------------------
# Monochrome


def test_monochrome_of_any_hue_but_not_line_art_or_flat_colours(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name, colour in (("orange", (255, 128, 0)), ("navy", (20, 30, 120)), ("grey", (128, 128, 128))):
        noisy = np.clip(np.asarray(colour) + rng.normal(0, 2, (128, 128, 3)), 0, 255).astype(np.uint8)
        (src / f"{name}.png").write_bytes(png_bytes(noisy))
    face = Image.open(sorted((shared_data / "anime_faces_256").glob("*.png"))[1]).convert("RGB")
    flat = face.quantize(6).convert("RGB")  # A flat-coloured illustration: six colours.
    flat.save(src / "flat_colours.png")
    edges = np.asarray(face.convert("L"), np.int16)
    steps = np.abs(np.diff(edges, axis=1, prepend=0)), np.abs(np.diff(edges, axis=0, prepend=0))
    lines = (steps[0] > 40) | (steps[1] > 40)
    ink = np.where(lines[:, :, None], np.array([40, 20, 90]), np.array([250, 245, 230])).astype(np.uint8)
    (src / "line_art.png").write_bytes(png_bytes(ink))  # Purple lines on paper: colour line art.
    sketch = Image.open(shared_data / "anime_full" / "anime2sketch" / "madoka.jpg").convert("L")
    sketch.save(src / "sketch.png")  # Real black-and-white line art.
    got = reasons(clean(src, tmp_path / "out", CleanConfig(drop_grayscale=False), OPTS))
    assert got == {"orange.png": "monochrome", "navy.png": "monochrome", "grey.png": "monochrome",
                   "flat_colours.png": "ok", "line_art.png": "ok", "sketch.png": "ok"}


# ----------------------------------------------------------------------------------------------
# Size limits


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height RGB pixels (a decompression bomb's header) and holds one row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * (3 * width + 1))) + chunk(b"IEND", b""))


def test_too_large_is_refused_from_the_header(tmp_path, shared_data):
    src = real_folder(tmp_path / "src", sorted((shared_data / "anime_faces_256").glob("*.png"))[:2])
    (src / "bomb.png").write_bytes(_png_header_only(40000, 40000))  # 1.6 G pixels claimed.
    (src / "big.png").write_bytes(_png_header_only(8000, 8000))  # 64 M pixels: over clean's 50 M.
    got = reasons(clean(src, tmp_path / "clean", CleanConfig(), OPTS))
    assert got == {"00.png": "ok", "01.png": "ok", "bomb.png": "too-large", "big.png": "too-large"}
    small_limit = CleanConfig(max_pixels=256 * 255)
    assert set(reasons(clean(src, tmp_path / "clean2", small_limit, OPTS)).values()) == {"too-large"}
    cfg = CropConfig(cascade=cascade(shared_data), min_face_size=64, max_pixels=50_000_000)
    got = reasons(crop(src, tmp_path / "crop", cfg, OPTS))
    assert got["bomb.png"] == got["big.png"] == "too-large"


# ----------------------------------------------------------------------------------------------
# Faces


def test_minimum_face_size_is_a_promise(tmp_path, shared_data):
    """The 89x109 CelebA photo whose 83-px 'face' used to be kept at min_face_size 256."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(shared_data / "human_faces" / "celeba_89x109" / "000198.jpg", src / "small_photo.jpg")
    for path in tadne(shared_data, 3):
        shutil.copy(path, src / path.name)
    Image.new("RGB", (300, 300), (255, 255, 255)).save(src / "blank.png")
    cfg = CropConfig(cascade=cascade(shared_data), min_face_size=256)
    entries = Manifest.read(crop(src, tmp_path / "out", cfg, OPTS).manifest)
    by_source = {e["source"]: e for e in entries}
    assert by_source["blank.png"]["reason"] == "no-face"
    small = by_source["small_photo.jpg"]
    assert small["reason"] == "face-too-small" and small["face"] < 89
    for e in entries:
        assert e["reason"] in ("face", "face-too-small", "no-face")
        assert e["box"][2] >= 256 if e["kept"] else e.get("face", 0) < 256
    kept = crop(src, tmp_path / "kept", CropConfig(cascade=cascade(shared_data), min_face_size=100), OPTS)
    for e in Manifest.read(kept.manifest):
        if e["kept"]:
            assert e["box"][2] >= 100 and read_image_info(tmp_path / "kept" / e["output"]).width >= 100


# ----------------------------------------------------------------------------------------------
# Photos among illustrations


@pytest.mark.slow
def test_photo_filter_drops_photographs_and_keeps_anime_faces(tmp_path, shared_data):
    """Human photos planted among real anime face crops; the full measurement (all 1010 crops, all
    237 photos) is in benchmarks/data_pipeline.py."""
    src = tmp_path / "src"
    src.mkdir()
    anime = sorted((shared_data / "anime_faces_64").glob("*.jpg"))[::5] + sorted(
        (shared_data / "anime_faces_256").glob("*.png")
    )
    for path in anime:
        shutil.copy(path, src / f"anime_{path.name}")
    humans = [p for p in sorted((shared_data / "human_faces").rglob("*.*")) if p.suffix in (".jpg", ".png")]
    for path in humans[::3]:
        shutil.copy(path, src / f"photo_{path.parent.name}_{path.name}")
    cfg = CleanConfig(drop_photos=True, drop_grayscale=False, min_size=32)
    got = reasons(clean(src, tmp_path / "out", cfg, RunOptions(progress=False, contact_sheet=False)))
    anime_dropped = np.mean([got[k] == "photo" for k in got if k.startswith("anime_")])
    photos_caught = np.mean([got[k] == "photo" for k in got if k.startswith("photo_")])
    assert anime_dropped <= 0.02 and photos_caught >= 0.8, (anime_dropped, photos_caught)
    off = reasons(clean(src, tmp_path / "off", CleanConfig(drop_grayscale=False, min_size=32), OPTS))
    assert "photo" not in off.values()


def test_photo_filter_is_on_in_the_anime_preset():
    assert compose_config("prepare").clean.drop_photos is True
    assert compose_config("prepare", "prepare/clean=default").clean.drop_photos is False


# ----------------------------------------------------------------------------------------------
# Dedupe


def _hex(value: int, bits: int) -> str:
    return f"{value:0{bits // 4}x}"


def _entry(source: str, fine: int, area: int) -> dict:
    """A hashed file whose 64-bit hashes all agree (so it is a candidate of every other) and whose
    256-bit hashes are `fine` in every variant."""
    return {"source": source, "phash": [_hex(0, 64)] * 6, "fine": [_hex(fine, 256)] * 6, "area": area,
            "scale": 1, "bytes": 1000}


def test_dedupe_never_chains_different_images():
    """A ~ B and B ~ C but A and C far apart: C is not dropped as a duplicate of A (union-find would)."""
    from stylegan_exp.data.dedupe import best_of_groups
    from stylegan_exp.data.prepare_config import DedupeConfig

    b, c = (1 << 30) - 1, ((1 << 30) - 1) << 30  # 30 bits from A; C is 60 bits from A, 60 from B.
    c ^= (1 << 30) - 1 & ~((1 << 10) - 1)  # Make B ~ C: they now share 20 of B's bits -> 40 apart.
    entries = [_entry("a", 0, 300), _entry("b", b, 200), _entry("c", c, 100)]
    cfg = DedupeConfig(fine_distance=44)
    assert bin(b).count("1") <= 44 and bin(b ^ c).count("1") <= 44 < bin(c).count("1")
    assert best_of_groups(entries, cfg) == {"b": "a"}


def _face_and_copies(shared_data: Path, folder: Path) -> dict[str, str]:
    """A real 256² face, then its 2x Lanczos and bicubic upscales, 0.5x, JPEG q30, 3% crop and mirror."""
    face = Image.open(sorted((shared_data / "anime_faces_256").glob("*.png"))[3]).convert("RGB")
    face.save(folder / "a_original.png")
    face.resize((512, 512), Image.Resampling.LANCZOS).save(folder / "b_up_lanczos.png")
    face.resize((512, 512), Image.Resampling.BICUBIC).save(folder / "c_up_bicubic.png")
    face.resize((128, 128), Image.Resampling.LANCZOS).save(folder / "d_half.png")
    face.save(folder / "e_q30.jpg", quality=30)
    face.crop((4, 3, 249, 248)).save(folder / "f_crop.png")
    face.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "g_mirror.png")
    other = sorted((shared_data / "anime_faces_256").glob("*.png"))[4]
    shutil.copy(other, folder / "h_other_face.png")
    return {p.name: p.name for p in folder.iterdir()}


def test_dedupe_finds_every_copy_and_keeps_the_original(tmp_path, shared_data):
    from stylegan_exp.data.dedupe import run as dedupe
    from stylegan_exp.data.prepare_config import DedupeConfig

    src = tmp_path / "src"
    src.mkdir()
    _face_and_copies(shared_data, src)
    entries = Manifest.read(dedupe(src, tmp_path / "out", DedupeConfig(), OPTS).manifest)
    got = {e["source"]: (e["reason"], e.get("of")) for e in entries}
    assert got.pop("a_original.png") == ("unique", None) and got.pop("h_other_face.png") == ("unique", None)
    assert got == {name: ("near-duplicate", "a_original.png") for name in got}, got
    # Files dedupe cannot hash keep the reason, and nothing else changes.
    (src / "broken.png").write_bytes(b"not a png")
    (src / "dangling.png").symlink_to(tmp_path / "gone.png")
    again = {e["source"]: e["reason"] for e in Manifest.read(dedupe(src, tmp_path / "again", DedupeConfig(),
                                                                    OPTS).manifest)}
    assert again.pop("broken.png") == "unreadable" and again.pop("dangling.png") == "broken-link"
    assert again == {e["source"]: e["reason"] for e in entries}
    (src / "broken.png").unlink()
    (src / "dangling.png").unlink()
    # Without mirror, the mirrored copy is a face of its own.
    no_mirror = Manifest.read(dedupe(src, tmp_path / "plain", DedupeConfig(mirror=False), OPTS).manifest)
    assert {e["source"]: e["reason"] for e in no_mirror}["g_mirror.png"] == "unique"


def test_one_dedupe_default_for_cli_and_prepare():
    from stylegan_exp.data.prepare_config import DedupeConfig

    composed = compose_config("prepare").dedupe
    assert (composed.max_distance, composed.fine_distance, composed.mirror) == (8, 44, True)
    assert DedupeConfig() == DedupeConfig(**composed)


# ----------------------------------------------------------------------------------------------
# Bad invocations


def _prepare(tmp_path: Path, src: Path, **overrides) -> PrepareConfig:
    cfg = PrepareConfig(source=str(src), stages=["clean", "dedupe", "resize", "pack"],
                        work_dir=str(tmp_path / "work"), dataset_dir=str(tmp_path / "dataset"), run=OPTS,
                        resize=ResizeConfig(resolution=32))
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def test_bad_invocations_fail_before_any_stage_runs(tmp_path, shared_data):
    from stylegan_exp.data.manifest import StageError

    src = real_folder(tmp_path / "src", sorted((shared_data / "anime_faces_256").glob("*.png"))[:2])
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "precious.txt").write_text("keep")
    cases = {
        "a_file is a file, not a folder": {"work_dir": str(tmp_path / "a_file")},
        "clean is a file": {"work_dir": str(tmp_path / "w2")},
        "empty holds no images": {"source": str(tmp_path / "empty")},
        "dataset_file is a file": {"dataset_dir": str(tmp_path / "dataset_file")},
        "busy already holds files that are not a finished pack": {"dataset_dir": str(tmp_path / "busy")},
    }
    (tmp_path / "w2").mkdir()
    (tmp_path / "w2" / "clean").write_text("x")
    (tmp_path / "dataset_file").write_text("x")
    for message, overrides in cases.items():
        with pytest.raises(StageError, match=message):
            run_prepare(_prepare(tmp_path, src, **overrides))
        assert not (tmp_path / "work").exists()  # No stage ran.
    # A stage that receives no images: clean drops everything, dedupe says so and names the folder.
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(2):
        (flat / f"{i}.png").write_bytes(png_bytes(np.full((96, 96, 3), 40 * i, np.uint8)))
    with pytest.raises(StageError, match=r"work/clean has no kept outputs"):
        run_prepare(_prepare(tmp_path, flat))
    assert (tmp_path / "work" / "clean").is_dir() and not (tmp_path / "work" / "dedupe").exists()


def test_bad_invocation_is_one_error_line(tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_python([str(REPO / "prepare.py"), f"source={tmp_path / 'empty'}", f"work_dir={tmp_path / 'w'}",
                       f"hydra.run.dir={tmp_path / 'hydra'}"], tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: input {tmp_path / 'empty'} holds no images "
                                               "(.jpg .jpeg .png .webp .bmp .gif .tif .tiff)"]
    assert not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------------------------
# pack: byte-reproducible, and a kill at any moment reruns to completion


def _pack(src: Path, dst: Path) -> list[str]:
    return ["-m", "stylegan_exp.data.pack", str(src), str(dst), "--no-progress", "--no-contact-sheet",
            "--shard-size", "64"]


@pytest.mark.slow
def test_pack_is_reproducible_and_survives_kills(tmp_path, shared_data):
    from stylegan_exp.data.reader import verify_dataset

    src = real_folder(tmp_path / "src", sorted((shared_data / "anime_faces_64").glob("*.jpg"))[:150])
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    assert run_python(_pack(src, tmp_path / "a"), tmp_path).returncode == 0
    start = time.monotonic()  # the second pack is timed: the kills below are spread over its length
    assert run_python(_pack(src, tmp_path / "b"), tmp_path).returncode == 0
    whole = time.monotonic() - start
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and "manifest.jsonl" in names
    # The manifest names its dataset folder; settings.json says when it was made.
    files = [name for name in names if name not in ("manifest.jsonl", "settings.json")]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    # Kill packs at moments spread over a whole run (start-up, decoding, writing, renaming).
    target = tmp_path / "killed"
    for fraction in (0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen([sys.executable, *_pack(src, target)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(whole * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not target.exists() or (target / "manifest.jsonl").is_file()  # All or nothing.
    done = run_python(_pack(src, target), tmp_path)
    assert done.returncode == 0, done.stderr
    verify_dataset(target)
    for name in files:
        assert (target / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------
# Permissions


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_honour_the_umask(tmp_path, shared_data, umask):
    from stylegan_exp.data.pack import run as pack

    old = os.umask(umask)
    try:
        src = tmp_path / "src"
        src.mkdir()
        for path in sorted((shared_data / "anime_faces_256").glob("*.png"))[:2]:
            shutil.copy(path, src / path.name)
        clean(src, tmp_path / "clean", CleanConfig(), RunOptions(workers=1, progress=False))
        pack(str(tmp_path / "clean"), tmp_path / "ds", PackConfig(), RunOptions(progress=False))
    finally:
        os.umask(old)
    written = [p for p in (tmp_path / "clean").iterdir()] + [p for p in (tmp_path / "ds").iterdir()]
    assert len(written) >= 7
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name
    assert (tmp_path / "ds").stat().st_mode & 0o777 == 0o777 & ~umask


# ----------------------------------------------------------------------------------------------
# End to end


@pytest.mark.slow
def test_prepare_then_train_on_the_folder_dataset(tmp_path, shared_data):
    """prepare.py (with odd names and bad files planted among real faces) → train.py dataset=folder."""
    src = tmp_path / "src"
    src.mkdir()
    faces = sorted((shared_data / "anime_faces_256").glob("*.png"))
    for name, path in zip(ODD_NAMES * 3, faces, strict=False):
        shutil.copy(path, src / f"{path.stem}-{name}")
    (src / "broken.jpg").write_bytes(b"not an image")
    (src / "dangling.png").symlink_to(tmp_path / "gone.png")
    dataset = tmp_path / "dataset"
    prepared = run_python(
        [str(REPO / "prepare.py"), f"source='{src}'", "stages=[select,clean,dedupe,resize,augment,pack]",
         f"work_dir={tmp_path / 'work'}", f"dataset_dir={dataset}", "resize.resolution=32",
         "augment.copies=2", "run.workers=1", "run.progress=false", f"hydra.run.dir={tmp_path / 'hydra'}"],
        tmp_path,
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    info = json.loads((dataset / "dataset.json").read_text())
    assert info["resolution"] == 32 and info["count"] == 30
    trained = run_python([str(REPO / "train.py"), *TINY, "dataset=folder", f"dataset.path={dataset}",
                          "dataset.synthetic=null", f"outputs_root={tmp_path / 'outputs'}",
                          "schedule.total_kimg=0.3"], tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert list((tmp_path / "outputs" / "tiny").glob("*/network-snapshot-*.npz"))
