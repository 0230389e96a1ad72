"""Stage 4, dedupe: near-duplicate removal (rescaled, recompressed, slightly cropped copies).

Each image gets a 64-bit DCT perceptual hash; images within `max_distance` bits are linked and
linked images form groups (union-find), of which the largest (then the biggest file: the least
compressed) is kept. Candidate pairs come from multi-index hashing: split the 64 bits into
`max_distance + 1` bands; by pigeonhole two hashes that close agree exactly on at least one band,
so sorting by each band finds every candidate without comparing all pairs (1M hashes in seconds).
The seed's ``findimagedupes -t 99%`` allows 1% of its 256 bits; on 64 DCT bits a few bits is the
useful range (see the tests for measured distances). Hashing is resumable and shardable; grouping
needs every shard's hashes and is cheap, so each shard redoes it.
CLI: ``python -m stylegan_exp.data.dedupe SRC DST [--max-distance 6]``.
"""

from __future__ import annotations

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
    manifest_path,
    resolve_inputs,
    run_stage,
    stage_cli,
    summarize,
)
from stylegan_exp.data.prepare_config import DedupeConfig, RunOptions

_HASH_SIZE = 8
_DCT_SIZE = 32


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(_DCT_SIZE)


def phash(gray: np.ndarray) -> int:
    """64-bit pHash of a grayscale HW(1) uint8 image: low 8x8 DCT frequencies of a 32x32 thumbnail,
    each bit = coefficient above the median of the 63 AC coefficients."""
    thumb = Image.fromarray(gray.reshape(gray.shape[:2])).resize((_DCT_SIZE, _DCT_SIZE), Image.Resampling.BOX)
    coeffs = (_DCT @ np.asarray(thumb, np.float64) @ _DCT.T)[:_HASH_SIZE, :_HASH_SIZE].ravel()
    bits = coeffs > np.median(coeffs[1:])
    return int(np.packbits(bits).view(">u8")[0])


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
        "phash": f"{phash(gray):016x}",
        "area": gray.shape[0] * gray.shape[1],
        "bytes": path.stat().st_size,
    }
    return [Outcome(None, True, "hashed", extra=extra)]


def copy_file(key: str, path: Path) -> list[Outcome]:
    return [Outcome(key, True, "unique", path.read_bytes())]


def best_of_groups(entries: list[dict], max_distance: int) -> dict[str, str]:
    """For every dropped source, the kept source of its group."""
    hashes = np.array([int(e["phash"], 16) for e in entries], np.uint64)
    labels = groups(len(entries), near_pairs(hashes, max_distance))
    best: dict[int, int] = {}
    for i, label in enumerate(labels):
        j = best.get(label)
        rank = (entries[i]["area"], entries[i]["bytes"])
        if j is None or rank > (entries[j]["area"], entries[j]["bytes"]):
            best[label] = i
    return {
        e["source"]: entries[best[labels[i]]]["source"] for i, e in enumerate(entries) if best[labels[i]] != i
    }


def run(
    src: str | os.PathLike, dst: str | os.PathLike, cfg: DedupeConfig, options: RunOptions
) -> StageResult:
    """Copy SRC to DST without near-duplicates (file bytes unchanged)."""
    if cfg.max_distance < 0 or cfg.max_distance > 31:
        raise StageError(f"dedupe max_distance must be in [0, 31], got {cfg.max_distance}")
    items = resolve_inputs(src)
    hash_dir = Path(dst) / ".hashes"
    hashing = run_stage(
        "dedupe-hash", items, hash_dir, hash_file, dataclasses.replace(options, contact_sheet=False)
    )
    entries = {
        e["source"]: e for path in sorted(hash_dir.glob("manifest*.jsonl")) for e in Manifest.read(path)
    }
    if any(key not in entries for key, _ in items):
        # Other shards (or a limited run) still have hashing to do; report this shard's progress.
        Path(dst).mkdir(parents=True, exist_ok=True)
        done = Manifest.read(manifest_path(Path(dst), options))
        return summarize("dedupe", Path(dst), done, hashing.processed, hashing.seconds, hashing.manifest)
    ordered = [entries[key] for key, _ in items]
    dropped = best_of_groups(ordered, cfg.max_distance)

    def decide(key: str, outcomes: list[Outcome], _: list[dict]) -> list[Outcome]:
        if key in dropped:
            return [Outcome(None, False, "near-duplicate", extra={"of": dropped[key]})]
        return outcomes

    return run_stage("dedupe", items, dst, copy_file, dataclasses.replace(options, workers=1), decide=decide)


def main(argv: list[str] | None = None) -> int:
    return stage_cli("dedupe", DedupeConfig, run, argv, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
