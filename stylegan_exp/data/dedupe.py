"""Stage 4, dedupe: near-duplicate removal (rescaled, recompressed, brightened, slightly cropped and,
with `mirror`, mirrored copies).

Every image gets DCT perceptual hashes of itself and of its central 96% and 92% (a copy cut 2-4%
smaller matches one of those), each also mirrored: a 64-bit one to find candidates and a 256-bit one
to confirm them. Candidates within `max_distance` bits on the 64-bit hashes come from multi-index
hashing (split the bits into bands; by pigeonhole two hashes that close agree on at least one band
up to a few bits, so sorting by each band finds every candidate without comparing all pairs); a
candidate is a duplicate when its full image is within `fine_distance` bits of the other's hashes on
256 bits. Groups never chain: members are taken in order of preference and each joins the first
kept member it is a duplicate of, so every dropped image is a confirmed duplicate of the one kept.
The member kept has the most detail: the largest effective size (a 2x upscale, whose top octave
is empty, counts at half its size), then the smaller file dimensions (an upscale never wins over
its original), then the most bytes (the least compressed). Hashing is resumable and shardable;
grouping needs every shard's hashes and is cheap, so each shard redoes it.
CLI: ``python -m stylegan_exp.data.dedupe SRC DST [--max-distance 8] [--fine-distance 44] [--no-mirror]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan_exp.data.images import load_image
from stylegan_exp.data.manifest import (
    Manifest,
    Outcome,
    StageError,
    StageResult,
    input_tags,
    manifest_path,
    printable,
    resolve_inputs,
    run_stage,
    stage_cli,
    summarize,
)
from stylegan_exp.data.prepare_config import DedupeConfig, RunOptions
from stylegan_exp.data.settings import claim, combine, input_settings, read_record, stage_settings

_DCT_SIZE = {64: 32, 256: 64}  # Hash bits -> side of the thumbnail whose low DCT frequencies they are.
_CROPS = (1.0, 0.96, 0.92)  # Central crops hashed besides the whole image.
# An image is a 2x upscale when its top octave holds less than this share of the energy the octave
# below does (measured on ../shared/data: originals >= 0.14, 2x Lanczos/bicubic/bilinear upscales
# median 0.04, nearest 0).
_UPSCALED = 0.1
_FLAT = 1e-4  # Below this top-octave share there is no detail to judge.
_MIN_EFFECTIVE = 16
_R = Image.Resampling
HASHES = ".hashes"  # Subfolder of the per-image hashes, which a change of dedupe's own settings keeps.


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = {size: _dct_matrix(size) for size in _DCT_SIZE.values()}


def phash(gray: np.ndarray, bits: int = 64) -> int:
    """pHash of a grayscale HW(1) uint8 image: the low sqrt(bits) x sqrt(bits) DCT frequencies of a
    box-filtered thumbnail (32x32 for 64 bits), each bit = coefficient above the median of the AC ones."""
    size, side = _DCT_SIZE[bits], math.isqrt(bits)
    thumb = Image.fromarray(np.ascontiguousarray(gray.reshape(gray.shape[:2]))).resize((size, size), _R.BOX)
    coeffs = (_DCT[size] @ np.asarray(thumb, np.float64) @ _DCT[size].T)[:side, :side].ravel()
    bits_set = coeffs > np.median(coeffs[1:])
    return int.from_bytes(np.packbits(bits_set).tobytes(), "big")


def image_hashes(gray: np.ndarray) -> dict[str, list[str]]:
    """The 64- and 256-bit hashes (hex) of the whole image and its central crops, each then mirrored."""
    height, width = gray.shape[:2]
    coarse, fine = [], []
    for scale in _CROPS:
        h, w = max(1, round(height * scale)), max(1, round(width * scale))
        top, left = (height - h) // 2, (width - w) // 2
        crop = gray[top : top + h, left : left + w]
        for view in (crop, crop[:, ::-1]):
            coarse.append(f"{phash(view, 64):016x}")
            fine.append(f"{phash(view, 256):064x}")
    return {"phash": coarse, "fine": fine}


def _top_octave(image: Image.Image) -> float:
    """Share of the energy that a 2x downscale loses and no usual upscaler gives back."""
    w, h = image.width // 2, image.height // 2
    full = image.crop((0, 0, 2 * w, 2 * h))
    x = np.asarray(full, np.float64)
    energy = float(((x - x.mean()) ** 2).sum()) or 1.0
    half = full.resize((w, h), _R.BOX)
    return min(
        float(((x - np.asarray(half.resize((2 * w, 2 * h), f), np.float64)) ** 2).sum()) / energy
        for f in (_R.NEAREST, _R.BILINEAR, _R.BICUBIC, _R.LANCZOS)
    )


def effective_scale(gray: np.ndarray) -> int:
    """1, or 2**k when the image is a 2**k-fold upscale: its top octave is nearly empty compared with
    the octave below (natural images lose energy slowly from one octave to the next)."""
    image, scale = Image.fromarray(np.ascontiguousarray(gray.reshape(gray.shape[:2]))), 1
    while min(image.size) >= 4 * _MIN_EFFECTIVE:
        half = image.resize((image.width // 2, image.height // 2), _R.BOX)
        below = _top_octave(half)
        if below < _FLAT or _top_octave(image) >= _UPSCALED * below:
            break
        image, scale = half, scale * 2
    return scale


def _plan(n: int, max_distance: int) -> tuple[int, int]:
    """(bands, radius) with the least expected work: by pigeonhole two hashes within d bits are
    within d // m bits on at least one of m bands, so each band is probed with every flip of up to
    that many bits. At least 3 bands keep the per-band bucket table small (<= 2^22 entries)."""
    best = None
    for m in range(3, max(3, max_distance + 1) + 1):
        width, radius = -(-64 // m), max_distance // m
        probes = sum(math.comb(width, k) for k in range(radius + 1))
        cost = m * probes * (1 + n / 2 ** (64 // m))
        if best is None or cost < best[0]:
            best = (cost, m, radius)
    return best[1], best[2]


def _band_pairs(unique: np.ndarray, lo: int, hi: int, radius: int, max_distance: int) -> np.ndarray:
    """Pairs within max_distance that are within `radius` bits on bits [lo, hi). Works in band-sorted
    order so the bucket-table lookups of each probe walk memory almost sequentially."""
    width = hi - lo
    values = ((unique >> np.uint64(lo)) & np.uint64((1 << width) - 1)).astype(np.int32)
    order = np.argsort(values, kind="stable")
    values, hashes = values[order], unique[order]
    starts = np.searchsorted(values, np.arange((1 << width) + 1, dtype=np.int32)).astype(np.int32)
    found = []
    for k in range(radius + 1):
        for bits in itertools.combinations(range(width), k):
            query = values ^ np.int32(sum(1 << b for b in bits))
            first = starts[query]
            count = starts[query + 1] - first
            i = np.flatnonzero(count)
            first, count = first[i], count[i]
            while i.size:  # The t-th member of each probed bucket, for t = 0, 1, …
                j = first
                keep = (i < j) & (np.bitwise_count(hashes[i] ^ hashes[j]) <= max_distance)
                found.append(np.stack([order[i[keep]], order[j[keep]]], axis=1))
                more = count > 1
                i, first, count = i[more], first[more] + 1, count[more] - 1
    return np.concatenate(found)


def near_pairs(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Index pairs (i < j) of uint64 hashes within `max_distance` bits, as an (m, 2) array; items with
    equal hashes are linked through the first of them (enough to form the same groups)."""
    hashes = np.asarray(hashes, np.uint64)
    if len(hashes) == 0:
        return np.empty((0, 2), np.int64)
    unique, inverse = np.unique(hashes, return_inverse=True)
    first = np.full(len(unique), -1, np.int64)
    first[inverse[::-1]] = np.arange(len(hashes))[::-1]
    rep = first[inverse]
    same = np.flatnonzero(rep != np.arange(len(hashes)))
    pairs = [np.stack([rep[same], same], axis=1)]
    bands, radius = _plan(len(unique), max_distance)
    bounds = np.linspace(0, 64, bands + 1).round().astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        linked = _band_pairs(unique, int(lo), int(hi), radius, max_distance)
        pairs.append(np.sort(first[linked], axis=1))
    return np.unique(np.concatenate(pairs).astype(np.int64), axis=0)


def groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find by label propagation: each item's label is the smallest index in its group."""
    labels = np.arange(n)
    if len(pairs) == 0:
        return labels
    a, b = pairs[:, 0], pairs[:, 1]
    while True:
        low = np.minimum(labels[a], labels[b])
        new = labels.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]
        while not np.array_equal(new, new[new]):
            new = new[new]
        if np.array_equal(new, labels):
            return labels
        labels = new


def hash_file(key: str, path: Path) -> list[Outcome]:
    gray = load_image(path, channels=1)
    extra = {
        **image_hashes(gray),
        "area": gray.shape[0] * gray.shape[1],
        "scale": effective_scale(gray),
        "bytes": path.stat().st_size,
    }
    return [Outcome(None, True, "hashed", extra=extra)]


def copy_file(key: str, path: Path) -> list[Outcome]:
    return [Outcome(key, True, "unique", path.read_bytes())]


def _words(hexes: list[str], columns: list[int], bits: int) -> np.ndarray:
    """Hashes as uint64 words: (variants, bits // 64)."""
    words = [[int(hexes[c][i : i + 16], 16) for i in range(0, bits // 4, 16)] for c in columns]
    return np.array(words, np.uint64)


def _owner_pairs(hashes: np.ndarray, owners: np.ndarray, max_distance: int) -> np.ndarray:
    """Every pair of owners (i < j) with some hashes within max_distance bits: near_pairs works on
    distinct values, so each pair of values stands for every pair of their occurrences."""
    unique, inverse = np.unique(hashes, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
    counts = np.diff(starts)
    same = np.flatnonzero(counts > 1)
    values = np.concatenate([near_pairs(unique, max_distance), np.stack([same, same], axis=1)])
    a, b = values[:, 0], values[:, 1]
    total = counts[a] * counts[b]
    pair = np.repeat(np.arange(len(values)), total)
    offset = np.arange(int(total.sum())) - np.repeat(np.cumsum(total) - total, total)
    x = owners[order[starts[a[pair]] + offset // counts[b[pair]]]]
    y = owners[order[starts[b[pair]] + offset % counts[b[pair]]]]
    keep = x != y
    return np.unique(np.sort(np.stack([x[keep], y[keep]], axis=1), axis=1), axis=0)


def duplicate_pairs(entries: list[dict], cfg: DedupeConfig) -> np.ndarray:
    """Confirmed duplicate pairs (i < j): candidates within max_distance on any 64-bit variant,
    confirmed when one's whole image is within fine_distance of the other's variants on 256 bits."""
    columns = list(range(2 * len(_CROPS))) if cfg.mirror else list(range(0, 2 * len(_CROPS), 2))
    if len(entries) < 2:
        return np.empty((0, 2), np.int64)
    coarse = np.stack([_words(e["phash"], columns, 64)[:, 0] for e in entries])
    owners = np.repeat(np.arange(len(entries)), len(columns))
    pairs = _owner_pairs(coarse.ravel(), owners, cfg.max_distance)
    if len(pairs) == 0:
        return pairs
    fine = np.stack([_words(e["fine"], columns, 256) for e in entries])  # (n, variants, 4)
    a, b = pairs[:, 0], pairs[:, 1]

    def distance(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # whole image of x against every variant of y
        return np.bitwise_count(fine[x][:, None, 0, :] ^ fine[y]).sum(axis=2).min(axis=1)

    close = np.minimum(distance(a, b), distance(b, a)) <= cfg.fine_distance
    return pairs[close]


def keep_order(entries: list[dict]) -> list[int]:
    """Indices from the member to keep first: most effective pixels, then fewest pixels (an upscale
    never beats its original), then most bytes, then input order."""
    def rank(i: int) -> tuple:
        e = entries[i]
        return (-e["area"] / e["scale"] ** 2, e["area"], -e["bytes"], i)

    return sorted(range(len(entries)), key=rank)


def best_of_groups(entries: list[dict], cfg: DedupeConfig) -> dict[str, str]:
    """For every dropped source, the kept source it duplicates. Members are taken in keep order and
    join the first kept member they are a confirmed duplicate of, so groups never chain."""
    neighbours: dict[int, list[int]] = {}
    for i, j in duplicate_pairs(entries, cfg).tolist():
        neighbours.setdefault(i, []).append(j)
        neighbours.setdefault(j, []).append(i)
    kept_by: dict[int, int] = {}
    for i in keep_order(entries):
        if i in kept_by:
            continue
        kept_by[i] = i
        for j in neighbours.get(i, ()):
            kept_by.setdefault(j, i)
    return {e["source"]: entries[kept_by[i]]["source"] for i, e in enumerate(entries) if kept_by[i] != i}


def run(
    src: str | os.PathLike, dst: str | os.PathLike, cfg: DedupeConfig, options: RunOptions
) -> StageResult:
    """Copy SRC to DST without near-duplicates (file bytes unchanged)."""
    if cfg.max_distance < 0 or cfg.max_distance > 31:
        raise StageError(f"dedupe max_distance must be in [0, 31], got {cfg.max_distance}")
    if cfg.fine_distance < 0 or cfg.fine_distance > 255:
        raise StageError(f"dedupe fine_distance must be in [0, 255], got {cfg.fine_distance}")
    items = resolve_inputs(src)
    settings, hash_settings = stage_settings("dedupe", cfg, src), combine({}, input_settings(src))
    hash_dir = Path(dst) / HASHES
    moved = claim(Path(dst), settings, "dedupe", (path for _, path in items))
    if moved is not None and (old := read_record(moved / HASHES)) and old["settings"] == hash_settings:
        with contextlib.suppress(OSError):  # Another shard may have started hashing anew.
            os.rename(moved / HASHES, hash_dir)  # The hashes depend on the input only: keep them.
    hashing = run_stage(
        "dedupe-hash", items, hash_dir, hash_file, dataclasses.replace(options, contact_sheet=False),
        settings=hash_settings,
    )
    entries = {
        e["source"]: e for path in sorted(hash_dir.glob("manifest*.jsonl")) for e in Manifest.read(path)
    }
    if any(key not in entries for key, _ in items):
        # Other shards (or a limited run) still have hashing to do; report this shard's progress.
        Path(dst).mkdir(parents=True, exist_ok=True)
        done = Manifest.read(manifest_path(Path(dst), options))
        return summarize("dedupe", Path(dst), done, hashing.processed, hashing.seconds, hashing.manifest)
    hashed = [entries[key] for key, _ in items if entries[key]["kept"]]
    if any("fine" not in e for e in hashed):
        raise StageError(f"{printable(hash_dir)} holds hashes of an older version; remove it and rerun")
    dropped = best_of_groups(hashed, cfg)

    def decide(key: str, outcomes: list[Outcome], _: list[dict]) -> list[Outcome]:
        entry = entries[key]
        if not entry["kept"]:  # Unreadable, broken link…: the reason hashing found.
            return [Outcome(None, False, entry["reason"], extra={"error": entry.get("error", "")})]
        if key in dropped:
            return [Outcome(None, False, "near-duplicate", extra={"of": dropped[key]})]
        return outcomes

    return run_stage("dedupe", items, dst, copy_file, dataclasses.replace(options, workers=1),
                     settings=settings, decide=decide, tags=input_tags(src))


def main(argv: list[str] | None = None) -> int:
    return stage_cli("dedupe", DedupeConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
