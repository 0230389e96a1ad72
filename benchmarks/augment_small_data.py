"""Does discriminator augmentation help on a few hundred images? Trains the small StyleGAN at 32² on 200 of
the shared anime face crops with augment=none, diffaugment and ada for the same kimg, then measures SWD of
every network snapshot against all 1,000 crops.

Prints a table (final and best SWD, ADA's p and r_t), writes benchmarks/results/augment_small_data.json and
copies each run's final fakes grid to benchmarks/results/augment_small_data/fakes-<mode>.png. The reference
row "memorise the 200" is SWD of the 200 training crops themselves (each used 5 times) against the 1,000:
what a generator that reproduced its training set exactly would score.

    .venv/bin/python benchmarks/augment_small_data.py                       # 60 kimg per mode
    .venv/bin/python benchmarks/augment_small_data.py --kimg 5 --modes ada  # a quick look
    .venv/bin/python benchmarks/augment_small_data.py --reuse               # re-evaluate finished runs
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from stylegan_exp.config import MetricsConfig, to_object  # noqa: E402
from stylegan_exp.data.images import load_image  # noqa: E402
from stylegan_exp.data.writer import pack_arrays  # noqa: E402
from stylegan_exp.metrics.evaluate import evaluate, real_batches  # noqa: E402
from stylegan_exp.metrics.swd import SWD  # noqa: E402
from stylegan_exp.models import load_snapshot, network  # noqa: E402
from stylegan_exp.nets.layers import downscale2d  # noqa: E402
from stylegan_exp.schemas import register_configs  # noqa: E402
from stylegan_exp.train.loop import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FACES = REPO.parent / "shared" / "data" / "anime_faces_64"
log = logging.getLogger("augment_small_data")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--modes", nargs="+", default=["none", "diffaugment", "ada"], help="augment options")
    p.add_argument("--kimg", type=float, default=60, help="training length of every mode")
    p.add_argument("--faces", type=Path, default=FACES, help="the 1,000 shared anime face crops")
    p.add_argument("--train-images", type=int, default=200, help="crops to train on (a seeded choice)")
    p.add_argument("--ada-kimg", type=float, default=20,
                   help="augment.ada_kimg: kimg for p to move by 1 (the original's 500 suits long runs)")
    p.add_argument("--r1-gamma", type=float, default=0.01,
                   help="model.r1_gamma: the paper's 10 is for 1024²; R1 grows with the pixel count, so "
                        "10·(32/1024)² ≈ 0.01 at 32² (at 10, D cannot overfit 200 crops in a short run)")
    p.add_argument("--snapshots", type=int, default=10, help="network snapshots (SWD points) per run")
    p.add_argument("--precision", default="float32",
                   help="model.precision: float32 keeps number formats out of the comparison")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--reuse", action="store_true",
                   help="evaluate a mode's finished run in --work (same settings) instead of training again")
    p.add_argument("--work", type=Path, default=RESULTS / "augment_small_data", help="datasets, runs, grids")
    p.add_argument("--out", type=Path, default=RESULTS / "augment_small_data.json", help="JSON results file")
    return p.parse_args(argv)


def pack_faces(faces_dir: Path, work: Path, train_images: int, seed: int) -> tuple[Path, Path]:
    """The 1,000 crops at 32² (the SWD reference) and a seeded choice of `train_images` of them."""
    files = sorted(faces_dir.glob("*.jpg"))
    if len(files) != 1000:
        raise SystemExit(f"expected the 1,000 crops in {faces_dir}, found {len(files)}")
    faces = np.stack([load_image(f, 3) for f in files])
    faces = np.round(downscale2d(faces).numpy()).astype(np.uint8)
    chosen = np.random.RandomState(seed).permutation(len(faces))[:train_images]
    all_dir, train_dir = work / "data" / "all1000-32", work / "data" / f"train{train_images}-32"
    for path, images in ((all_dir, faces), (train_dir, faces[chosen])):
        if path.exists():
            shutil.rmtree(path)
        pack_arrays(images, path, meta={"name": path.name})
    return all_dir, train_dir


def finished_run(run_dir: Path, kimg: float) -> float | None:
    """Training seconds of a run in `run_dir` that reached `kimg` (its ticks' sum), else None."""
    if not (run_dir / "metrics.jsonl").is_file():
        return None
    rows = ticks(run_dir, "sec_per_tick")
    if not rows or rows[-1]["kimg"] < kimg - 1:
        return None
    return sum(r["sec_per_tick"] for r in rows)


def train(mode: str, args: argparse.Namespace, train_dir: Path) -> tuple[Path, float]:
    """One run of `mode`; returns its run dir and training seconds."""
    tick = args.kimg / args.snapshots
    overrides = [
        "model=small", "gpus=cpu", "dataset=folder", f"dataset.path={train_dir}", "dataset.resolution=32",
        "dataset.mirror=false", "schedule=demo", "schedule.lod_initial_resolution=32",
        f"schedule.total_kimg={args.kimg}", "schedule.max_minutes=null", f"schedule.tick_kimg_base={tick}",
        "schedule.network_snapshot_ticks=1", "logger=none", f"augment={mode}", f"seed={args.seed}",
        f"name=augment-{mode}", f"outputs_root={args.work / 'runs'}", "run.checkpoint_kimg=1000",
        "run.checkpoint_minutes=1000", f"model.r1_gamma={args.r1_gamma}",
        f"model.precision={args.precision}",
    ]
    if mode == "ada":
        overrides.append(f"augment.ada_kimg={args.ada_kimg}")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = to_object(compose("train", overrides=overrides))
    run_dir = args.work / "runs" / mode
    if run_dir.exists():
        shutil.rmtree(run_dir)
    start = time.time()
    Trainer(cfg, run_dir).run()
    return run_dir, time.time() - start


def swd_curve(run_dir: Path, all_dir: Path) -> list[dict[str, float]]:
    """SWD (×1e3) of every network snapshot of a run against all 1,000 crops."""
    cfg = MetricsConfig(name="swd", kinds=["swd"], num_images=1000)
    curve = []
    for path in sorted(run_dir.glob("network-snapshot-*.npz")):
        snap = load_snapshot(path)
        result = evaluate(network(snap, "Gs"), all_dir, 32, cfg, Path("~/.cache/stylegan_exp/metrics"))
        curve.append({"kimg": snap.kimg, **{k.removeprefix("metrics/"): v for k, v in result.items()}})
    return curve


def memorised_swd(all_dir: Path, train_dir: Path, train_images: int) -> dict[str, float]:
    """SWD of the training crops themselves, each used 1000 / n times, against the 1,000."""
    cfg = MetricsConfig(name="swd", kinds=["swd"], num_images=1000)
    swd = SWD(32, cfg.swd, cfg.seed)
    real = swd.descriptors(real_batches(all_dir, 32, 1000, cfg.minibatch, cfg.seed))
    train = np.concatenate(list(real_batches(train_dir, 32, train_images, cfg.minibatch, cfg.seed)))
    return swd.distance(real, swd.descriptors([np.tile(train, [1000 // train_images, 1, 1, 1])]))


def ticks(run_dir: Path, *extra: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: r[k] for k in ("kimg", "loss/G", "loss/D", "score/real", "score/fake", "augment/p",
                               "augment/rt", "img_per_sec", *extra) if k in r} for r in rows if "tick" in r]


def format_table(rows: list[dict[str, Any]], memorised: dict[str, float]) -> str:
    from train_speed import aligned

    head = ("augment", "kimg", "min", "img/s", "SWD 32", "SWD 16", "SWD mean", "best mean (kimg)", "p end",
            "r_t end")
    body = []
    for r in rows:
        end, best = r["swd"][-1], min(r["swd"], key=lambda s: s["swd_mean"])
        last = r["ticks"][-1]
        body.append((r["mode"], f"{r['kimg']:.0f}", f"{r['seconds'] / 60:.1f}", f"{r['img_per_sec']:.0f}",
                     f"{end['swd_32']:.1f}", f"{end['swd_16']:.1f}", f"{end['swd_mean']:.1f}",
                     f"{best['swd_mean']:.1f} ({best['kimg']:.0f})",
                     f"{last['augment/p']:.3f}" if "augment/p" in last else "-",
                     f"{last['augment/rt']:.2f}" if "augment/rt" in last else "-"))
    body.append(("memorise the 200", "", "", "", f"{memorised['swd_32']:.1f}", f"{memorised['swd_16']:.1f}",
                 f"{memorised['swd_mean']:.1f}", "", "", ""))
    return aligned(head, body)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import machine_info, write_results

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    register_configs()
    tf.random.set_seed(args.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    all_dir, train_dir = pack_faces(args.faces, args.work, args.train_images, args.seed)
    memorised = memorised_swd(all_dir, train_dir, args.train_images)
    rows = []
    for mode in args.modes:
        run_dir = args.work / "runs" / mode
        seconds = finished_run(run_dir, args.kimg) if args.reuse else None
        if seconds is None:
            log.info("training augment=%s for %.0f kimg on %d crops", mode, args.kimg, args.train_images)
            run_dir, seconds = train(mode, args, train_dir)
        else:
            log.info("evaluating the finished augment=%s run in %s", mode, run_dir)
        grid = args.work / f"fakes-{mode}.png"
        shutil.copyfile(sorted(run_dir.glob("fakes*.png"))[-1], grid)
        history = ticks(run_dir)
        rows.append({"mode": mode, "kimg": history[-1]["kimg"], "seconds": seconds,
                     "img_per_sec": history[-1]["kimg"] * 1000 / seconds, "swd": swd_curve(run_dir, all_dir),
                     "ticks": history, "grid": str(grid), "run_dir": str(run_dir)})
    print()
    print(format_table(rows, memorised))
    for r in rows:
        if any("augment/p" in t for t in r["ticks"]):
            print(f"{r['mode']} p over time: " + ", ".join(f"{t['kimg']:.0f}: {t['augment/p']:.3f}"
                                                           for t in r["ticks"]))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = {"machine": machine_info(), "settings": settings, "memorised_swd": memorised, "results": rows}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
