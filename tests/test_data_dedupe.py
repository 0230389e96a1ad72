"""dedupe: multi-index hashing finds exactly the brute-force groups; planted near-duplicates of real
images are found and the best copy kept; distinct faces are not merged."""

import io

import numpy as np
from PIL import Image

from stylegan_exp.data.dedupe import groups, near_pairs, phash
from stylegan_exp.data.dedupe import run as dedupe
from stylegan_exp.data.manifest import Manifest
from stylegan_exp.data.prepare_config import DedupeConfig, RunOptions

OPTS = RunOptions(workers=1, progress=False, contact_sheet=False)


def _random_hashes(n: int, planted: int, max_flips: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    for i in range(planted):
        value = int(hashes[i])
        for bit in rng.choice(64, size=rng.integers(0, max_flips + 1), replace=False):
            value ^= 1 << int(bit)
        hashes[n - 1 - i] = value
    hashes[7] = hashes[8]  # An exact duplicate too.
    return hashes


def test_near_pairs_give_the_brute_force_groups():
    for max_distance in (0, 2, 5, 8):
        hashes = _random_hashes(2000, 300, max_distance + 2, seed=max_distance)
        distance = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
        brute = np.argwhere(np.triu(distance <= max_distance, 1))
        assert np.array_equal(groups(2000, near_pairs(hashes, max_distance)), groups(2000, brute))


def test_groups_are_transitive():
    labels = groups(6, np.array([[0, 3], [3, 5], [1, 2]]))
    assert labels.tolist() == [0, 1, 1, 0, 4, 0]


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_planted_near_duplicates_are_found_and_distinct_faces_kept(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    originals = sorted((shared_data / "anime_faces_256").glob("*.png"))
    originals += sorted((shared_data / "anime_full" / "tadne_hysts").glob("*.jpg"))[:12]
    for i, path in enumerate(originals):
        image = Image.open(path).convert("RGB")
        image.save(src / f"{i:02d}_orig.png")
        w, h = image.size
        if i % 3 == 0:
            image.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(src / f"{i:02d}_small.png")
        elif i % 3 == 1:
            (src / f"{i:02d}_q40.jpg").write_bytes(_jpeg(image, 40))
        else:
            c = round(w * 0.02)
            image.crop((c, c, w - c, h - c)).save(src / f"{i:02d}_crop.png")
    result = dedupe(src, tmp_path / "out", DedupeConfig(max_distance=8), OPTS)
    entries = {e["source"]: e for e in Manifest.read(result.manifest)}
    kept = sorted(k for k, e in entries.items() if e["kept"])
    assert kept == [f"{i:02d}_orig.png" for i in range(len(originals))]
    for key, e in entries.items():
        if not e["kept"]:
            assert e["reason"] == "near-duplicate" and e["of"] == key[:2] + "_orig.png"
    assert (tmp_path / "out" / "00_orig.png").read_bytes() == (src / "00_orig.png").read_bytes()


def test_phash_is_stable_under_rescaling(shared_data):
    image = Image.open(shared_data / "anime_faces_256" / "03.png").convert("L")
    a = phash(np.asarray(image))
    b = phash(np.asarray(image.resize((100, 100), Image.Resampling.LANCZOS)))
    assert bin(a ^ b).count("1") <= 4


def test_sharded_dedupe_matches_the_unsharded_one(tmp_path, shared_data):
    src = tmp_path / "src"
    src.mkdir()
    for path in sorted((shared_data / "anime_faces_256").glob("*.png"))[:6]:
        image = Image.open(path).convert("RGB")
        image.save(src / path.name)
        (src / f"{path.stem}_copy.jpg").write_bytes(_jpeg(image, 50))
    whole = dedupe(src, tmp_path / "whole", DedupeConfig(), OPTS)
    expected = sorted((e["source"], e["reason"]) for e in Manifest.read(whole.manifest))
    shards = [
        RunOptions(workers=1, progress=False, contact_sheet=False, shard_index=i, shard_count=2)
        for i in (0, 1)
    ]
    first = dedupe(src, tmp_path / "sharded", DedupeConfig(), shards[0])  # Waits for shard 1's hashes.
    assert first.kept + first.dropped == 0
    dedupe(src, tmp_path / "sharded", DedupeConfig(), shards[1])
    dedupe(src, tmp_path / "sharded", DedupeConfig(), shards[0])
    got = [
        (e["source"], e["reason"])
        for p in (tmp_path / "sharded").glob("manifest*.jsonl")
        for e in Manifest.read(p)
    ]
    assert sorted(got) == expected and ("00.png", "unique") in got
