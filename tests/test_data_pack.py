"""pack: bad files are skipped with a reason (never abort), sources are combined with weights, and the
result is a normal dataset for records.make_dataset."""

import shutil

import numpy as np
import pytest

from stylegan_exp.data.images import save_image
from stylegan_exp.data.manifest import Manifest, StageError
from stylegan_exp.data.pack import copies, parse_sources
from stylegan_exp.data.pack import run as pack
from stylegan_exp.data.prepare_config import PackConfig, PackSource, RunOptions
from stylegan_exp.data.reader import load_info, make_dataset

OPTS = RunOptions(progress=False, contact_sheet=False)


def test_weights_and_source_specs():
    assert copies("x", 2.0) == 2 and copies("x", 0.0) == 0
    drawn = sum(copies(f"img{i}", 0.5) for i in range(2000))
    assert 900 < drawn < 1100
    assert parse_sources("a:2,b, c:0.5") == [PackSource("a", 2.0), PackSource("b", 1.0), PackSource("c", 0.5)]


def test_pack_skips_bad_files_and_weights_sources(tmp_path, shared_data):
    anime = tmp_path / "anime"
    anime.mkdir()
    for path in sorted((shared_data / "anime_faces_64").glob("*.jpg"))[:8]:
        shutil.copy(path, anime / path.name)
    (anime / "empty.jpg").write_bytes(b"")
    (anime / "broken.jpg").write_bytes(b"not a jpeg")
    save_image(np.zeros((32, 32, 3), np.uint8), anime / "small.png")
    real = tmp_path / "real"
    real.mkdir()
    for i in range(6):
        save_image(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8), real / f"{i}.png")
    cfg = PackConfig(sources=[PackSource(str(anime), 2.0), PackSource(str(real), 0.5)], image_format="png")
    result = pack(None, tmp_path / "ds", cfg, OPTS)
    entries = Manifest.read(result.manifest)
    reasons = {e["source"].rsplit("/", 1)[1]: e["reason"] for e in entries if not e["kept"]}
    assert reasons["empty.jpg"] == "empty" and reasons["broken.jpg"] == "unreadable"
    assert reasons["small.png"].startswith("size 32x32")
    real_used = sum(e.get("copies", 0) for e in entries if "/real/" in e["source"])
    info = load_info(tmp_path / "ds")
    assert info.count == 8 * 2 + real_used and info.resolution == 64 and info.channels == 3
    assert info.source_bytes > 0 and info.meta["sources"][1]["weight"] == 0.5
    batch = next(iter(make_dataset(tmp_path / "ds", 32, 4, shuffle_buffer=0)))
    assert batch.shape == (4, 32, 32, 3)
    again = pack(None, tmp_path / "ds", cfg, OPTS)  # Finished: not redone.
    assert again.processed == 0 and again.kept == result.kept


def test_pack_refuses_bad_options(tmp_path):
    with pytest.raises(StageError, match="webp"):
        pack(str(tmp_path), tmp_path / "ds", PackConfig(image_format="webp"), OPTS)
    with pytest.raises(StageError, match="nowhere"):
        pack(str(tmp_path / "nowhere"), tmp_path / "ds", PackConfig(), OPTS)
