"""Data pipeline throughput: crop img/s per core on 512² illustrations, clean and pack img/s, dataset
bytes over source bytes, and dedupe grouping time for 10k/100k/1M synthetic 64-bit hashes.

Reads the test images in ../shared/data. Prints a table and writes benchmarks/results/data_pipeline.json.
Usage: ``python benchmarks/data_pipeline.py [--sizes 10000 100000 1000000] [--max-distance 8]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stylegan_exp.data import clean, crop  # noqa: E402
from stylegan_exp.data.dedupe import groups, near_pairs  # noqa: E402
from stylegan_exp.data.prepare_config import CleanConfig, CropConfig, PackConfig, RunOptions  # noqa: E402


def _options(workers: int) -> RunOptions:
    return RunOptions(workers=workers, progress=False, contact_sheet=False)


def bench_crop(tmp: Path, workers: int, repeat: int = 4) -> dict:
    src = tmp / "crop_sources"  # The 36 portraits under `repeat` names: enough work to amortize startup.
    if not src.is_dir():
        src.mkdir()
        for path in sorted((SHARED / "anime_full" / "tadne_hysts").glob("*.jpg")):
            for i in range(repeat):
                (src / f"{path.stem}_{i}.jpg").symlink_to(path)
    cfg = CropConfig(cascade=str(SHARED / "cascade" / "lbpcascade_animeface.xml"), min_face_size=64)
    start = time.perf_counter()
    result = crop.run(src, tmp / f"crop{workers}", cfg, _options(workers))
    seconds = time.perf_counter() - start
    n = len({json.loads(line)["source"] for line in result.manifest.read_text().splitlines()})
    return {
        "images": n,
        "workers": workers,
        "seconds": seconds,
        "img_per_s": n / seconds,
        "img_per_s_per_core": n / seconds / workers,
        "faces": result.kept,
    }


def bench_clean(tmp: Path, workers: int) -> dict:
    listing = tmp / "clean_sources.txt"
    files = sorted((SHARED / "anime_faces_64").glob("*.jpg"))
    files += sorted(p for p in (SHARED / "human_faces").rglob("*") if p.is_file() and p.suffix != ".md")
    listing.write_text("".join(f"{p}\n" for p in files))
    start = time.perf_counter()
    result = clean.run(listing, tmp / f"clean{workers}", CleanConfig(), _options(workers))
    seconds = time.perf_counter() - start
    n = result.kept + result.dropped
    return {
        "images": n,
        "workers": workers,
        "seconds": seconds,
        "img_per_s": n / seconds,
        "kept": result.kept,
        "reasons": {f"{'kept' if k else 'dropped'}:{r}": c for (k, r), c in result.reasons.items()},
    }


def bench_pack(tmp: Path, folder: Path, fmt: str) -> dict:
    from stylegan_exp.data import pack  # TensorFlow; not imported by the spawned crop/clean workers.

    start = time.perf_counter()
    result = pack.run(
        str(folder), tmp / f"pack_{folder.name}_{fmt}", PackConfig(image_format=fmt), _options(1)
    )
    seconds = time.perf_counter() - start
    info = json.loads((result.dst / "dataset.json").read_text())
    stored = sum(s["bytes"] for s in info["shards"])
    return {
        "source": folder.name,
        "format": fmt,
        "images": result.kept,
        "seconds": seconds,
        "img_per_s": result.kept / seconds,
        "dataset_bytes": stored,
        "source_bytes": info["source_bytes"],
        "ratio": stored / info["source_bytes"],
    }


def bench_dedupe(n: int, max_distance: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    planted = n // 100  # 1% near-duplicates with up to max_distance flipped bits.
    flips = rng.integers(0, max_distance + 1, size=planted)
    for i in range(planted):
        value = int(hashes[i])
        for bit in rng.choice(64, size=flips[i], replace=False):
            value ^= 1 << int(bit)
        hashes[n - 1 - i] = value
    start = time.perf_counter()
    labels = groups(n, near_pairs(hashes, max_distance))
    seconds = time.perf_counter() - start
    dropped = n - len(np.unique(labels))
    return {
        "hashes": n,
        "max_distance": max_distance,
        "seconds": seconds,
        "dropped": int(dropped),
        "planted": planted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--max-distance", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"error: test images not found at {SHARED}")
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="data-bench-"))
    try:
        results = {
            "machine": {"cores": cores, "python": platform.python_version()},
            "crop": [bench_crop(tmp, 1), bench_crop(tmp, cores)],
            "clean": [bench_clean(tmp, cores)],
            "pack": [
                bench_pack(tmp, SHARED / "anime_faces_64", "jpeg"),
                bench_pack(tmp, SHARED / "anime_faces_256", "jpeg"),
                bench_pack(tmp, SHARED / "anime_faces_256", "png"),
            ],
            "dedupe": [bench_dedupe(n, d) for d in args.max_distance for n in args.sizes],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'what':<40} {'images':>9} {'seconds':>8} {'img/s':>9}  notes")
    for r in results["crop"]:
        print(
            f"{'crop 512² tadne, ' + str(r['workers']) + ' worker(s)':<40} {r['images']:>9} "
            f"{r['seconds']:>8.2f} {r['img_per_s']:>9.1f}  "
            f"{r['img_per_s_per_core']:.1f} img/s per core, {r['faces']} faces"
        )
    for r in results["clean"]:
        print(
            f"{'clean 64²..1024² mixed, ' + str(r['workers']) + ' workers':<40} {r['images']:>9} "
            f"{r['seconds']:>8.2f} {r['img_per_s']:>9.1f}  {r['kept']} kept"
        )
    for r in results["pack"]:
        print(
            f"{'pack ' + r['source'] + ' -> ' + r['format']:<40} {r['images']:>9} {r['seconds']:>8.2f} "
            f"{r['img_per_s']:>9.1f}  dataset/source bytes {r['ratio']:.3f}"
        )
    for r in results["dedupe"]:
        print(
            f"{'dedupe synthetic hashes, d<=' + str(r['max_distance']):<40} {r['hashes']:>9} "
            f"{r['seconds']:>8.2f} {r['hashes'] / r['seconds']:>9.0f}  {r['dropped']} dropped of "
            f"{r['planted']} planted"
        )
    out = REPO / "benchmarks" / "results" / "data_pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
