"""Non-square training (`dataset.aspect`) against the square crop of the same data: SWD at equal kimg, and
training throughput against squares.

Quality: the same faces as 1:2 portraits (face, shoulders, torso) and as the square crop a square pipeline
keeps (each portrait's top square: the face box), each trained for `--kimg` with the tiny experiment (its
growing schedule), then SWD (×1e3, the run's short side) of each run's fakes against its own reals — and,
the like-for-like number, of the portrait run's top squares against the square reals. `--source shared`
uses portraits `prepare.py aspect=1:2` cuts from ../shared/data's illustrations instead of synthetic ones.

Throughput: sec/kimg of the later ticks at full resolution from the first step (no growing; the demo's
small model, minibatch 16) for squares at R and 2R (R = `--speed-resolution`), 1:2 at R (2R² pixels,
against the squares' throughput interpolated log-linearly in pixels to 2R²) and 1:4 at R (4R² pixels:
exactly the 2R square's count).

    nice -n 19 .venv/bin/python benchmarks/aspect.py                       # ~7 min on 2 cores
    nice -n 19 .venv/bin/python benchmarks/aspect.py --kimg 0.3 --speed-kimg 0.2 --count 128 --swd-images 64
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--resolution", type=int, default=16, help="short side R")
    p.add_argument("--count", type=int, default=1000, help="synthetic faces")
    p.add_argument("--source", choices=["synthetic", "shared"], default="synthetic")
    p.add_argument("--kimg", type=float, default=4.0, help="training length of each quality run")
    p.add_argument("--speed-kimg", type=float, default=0.5, help="training length of each throughput run")
    p.add_argument("--speed-resolution", type=int, default=32, help="short side R of the throughput runs")
    p.add_argument("--speed-experiment", default="demo", help="conf/experiment/<name> of the throughput runs")
    p.add_argument("--swd-images", type=int, default=512)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "aspect.json")
    return p.parse_args(argv)


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from stylegan_exp.config import to_object
    from stylegan_exp.schemas import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_object(hydra_compose("train", overrides=list(overrides)))


def portraits(root: Path, args: argparse.Namespace) -> Path:
    """The 1:2 dataset: synthetic portraits, or prepare.py's from the shared illustrations."""
    from stylegan_exp.aspect import parse_aspect
    from stylegan_exp.data.synthetic import ensure_synthetic_dataset

    if args.source == "synthetic":
        return ensure_synthetic_dataset(root / "portraits", count=args.count, resolution=args.resolution,
                                        seed=0, aspect=parse_aspect("1:2"))
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from stylegan_exp.data.prepare import run_prepare
    from stylegan_exp.data.prepare_config import register_prepare_configs

    register_prepare_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = hydra_compose("prepare", overrides=[
            "aspect=1:2", "stages=[crop,resize,pack]", f"source={SHARED / 'anime_full'}",
            f"crop.cascade={SHARED / 'cascade' / 'lbpcascade_animeface.xml'}", "crop.min_face_size=48",
            f"resize.resolution={args.resolution}", f"work_dir={root / 'work'}",
            f"dataset_dir={root / 'portraits'}", "run.progress=false"])
    run_prepare(cfg)
    return root / "portraits"


def top_squares(images: np.ndarray) -> np.ndarray:
    """Each portrait's top square (where the face is): the crop a square pipeline keeps."""
    return images[:, : images.shape[2]]


def square_crops(portrait_dir: Path, root: Path, resolution: int) -> Path:
    from stylegan_exp.data.reader import load_info, make_dataset
    from stylegan_exp.data.writer import pack_arrays

    count = load_info(portrait_dir).count
    (batch,) = make_dataset(portrait_dir, resolution, count, shuffle_buffer=1, repeat=False).take(1)
    pixels = np.rint((batch.numpy() + 1) * 127.5).astype(np.uint8)
    return pack_arrays(top_squares(pixels), root / "squares").path


def train(data: Path, aspect: str, run_dir: Path, kimg: float, *overrides: str, experiment: str = "tiny"
          ) -> Path:
    from stylegan_exp.train.loop import Trainer

    cfg = compose(f"+experiment={experiment}", "dataset=folder", f"dataset.path={data}",
                  f"dataset.aspect={aspect}", "dataset.resolution=null", "logger=none",
                  "model.precision=float32", f"schedule.total_kimg={kimg}",
                  "schedule.network_snapshot_ticks=1000", "run.checkpoint_kimg=1000", *overrides)
    Trainer(cfg, run_dir).run()
    return run_dir


def swd_of(run_dir: Path, data: Path, resolution: int, n: int, crop: bool = False) -> float:
    from stylegan_exp.config import SWDConfig
    from stylegan_exp.metrics.evaluate import fake_batches, real_batches
    from stylegan_exp.metrics.swd import SWD
    from stylegan_exp.models import load_snapshot, network

    Gs = network(load_snapshot(sorted(run_dir.glob("network-snapshot-*.npz"))[-1]), "Gs")
    swd = SWD(resolution, SWDConfig(), seed=0)
    fakes = (top_squares(b) if crop else b for b in fake_batches(Gs, n, 32))
    reals = swd.descriptors(real_batches(data, resolution, n, 32))
    return swd.distance(reals, swd.descriptors(fakes))["swd_mean"]


def speed(root: Path, name: str, data: Path, aspect: str, resolution: int, args: argparse.Namespace) -> float:
    """Median sec/kimg of the ticks after the first (which traces the steps)."""
    kimg = args.speed_kimg
    run_dir = train(data, aspect, root / f"speed-{name}", kimg, f"dataset.resolution={resolution}",
                    f"schedule.lod_initial_resolution={resolution}", f"schedule.tick_kimg_base={kimg / 4}",
                    "schedule.tick_kimg_dict={}", f"gpus.minibatch_dict={{{resolution}: 16}}",
                    "schedule.max_minutes=null", experiment=args.speed_experiment)
    ticks = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    later = [t["sec_per_kimg"] for t in ticks if "tick" in t][1:]
    return float(np.median(later)) if later else float("nan")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from stylegan_exp.aspect import parse_aspect
    from stylegan_exp.data.reader import load_info
    from stylegan_exp.data.synthetic import ensure_synthetic_dataset

    r = args.resolution
    with tempfile.TemporaryDirectory(prefix="aspect-bench-") as tmp:
        root = Path(tmp)
        rect = portraits(root, args)
        square = square_crops(rect, root, r)
        n = args.swd_images
        train(rect, "1:2", root / "rect", args.kimg)
        train(square, "1:1", root / "square", args.kimg)
        quality = {"kimg": args.kimg, "images": n, "dataset_images": load_info(rect).count,
                   "swd_rect_vs_rect_reals": swd_of(root / "rect", rect, r, n),
                   "swd_square_vs_square_reals": swd_of(root / "square", square, r, n),
                   "swd_rect_top_square_vs_square_reals": swd_of(root / "rect", square, r, n, crop=True)}
        r = args.speed_resolution
        sets = {"1:1": ensure_synthetic_dataset(root / "s1", count=256, resolution=2 * r, seed=0),
                "1:2": ensure_synthetic_dataset(root / "s2", count=256, resolution=r, seed=0,
                                                aspect=parse_aspect("1:2")),
                "1:4": ensure_synthetic_dataset(root / "s4", count=256, resolution=r, seed=0,
                                                aspect=parse_aspect("1:4"))}
        timing = {f"{r}x{r}": speed(root, "sq-r", sets["1:1"], "1:1", r, args),
                  f"{2 * r}x{2 * r}": speed(root, "sq-2r", sets["1:1"], "1:1", 2 * r, args),
                  f"{r}x{2 * r}": speed(root, "1x2", sets["1:2"], "1:2", r, args),
                  f"{r}x{4 * r}": speed(root, "1x4", sets["1:4"], "1:4", r, args)}
    square_at_2r2 = math.sqrt(timing[f"{r}x{r}"] * timing[f"{2 * r}x{2 * r}"])  # log-linear in pixels
    ratios = {"1:2_vs_square_same_pixels": timing[f"{r}x{2 * r}"] / square_at_2r2,
              "1:4_vs_square_same_pixels": timing[f"{r}x{4 * r}"] / timing[f"{2 * r}x{2 * r}"]}
    print(f"{'quality (' + args.source + f', {args.kimg:g} kimg, {n} images)':<48} SWD×1e3")
    for key, value in quality.items():
        if key.startswith("swd_"):
            print(f"  {key:<46} {value:8.2f}")
    print(f"{f'throughput (width x height, {args.speed_experiment})':<48} sec/kimg")
    for key, value in timing.items():
        print(f"  {key:<46} {value:8.2f}")
    for key, value in ratios.items():
        print(f"  {key:<46} {value:8.2f}x the time")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "commit": commit,
                                    "quality": quality,
                                    "sec_per_kimg": timing, "ratios": ratios,
                                    "machine": platform.platform()}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
