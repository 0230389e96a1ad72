"""How much of a quality difference is seed noise? Trains the small StyleGAN on the 1,000 shared anime face
crops at a fixed 32² for the same kimg with several seeds, in float32 and in the default precision, and
measures SWD per level (×10³, all 1,000 crops against 1,000 untruncated fakes), its mean and spread.

The hyper-parameters are issue 31's race: `model=small`, minibatch 32 (`gpus=cpu` at 32²), learning rate
0.001, Adam (0, 0.99, 1e-8), R1 γ 10, G_smoothing_kimg 10, minibatch_repeats 4, style mixing 0.9, mirror
off, no growing (lod 0 at 32²). Besides the final SWD it records what explains a spread: SWD of the same
final Gs under other metric seeds (the metric's own noise), SWD at the last network snapshots (how fast runs
still improve: the seed spread in kimg of progress), and per tick D's r_t = E[sign(D(real))] and the losses.

Prints a table and writes JSON (default benchmarks/results/swd_seeds.json; the README's table is backed by
benchmarks/published/swd_seeds.json):

    nice -n 19 .venv/bin/python benchmarks/swd_seeds.py --out benchmarks/published/swd_seeds.json
    .venv/bin/python benchmarks/swd_seeds.py --kimg 1 --seeds 1 2 --snapshot-kimg 0.5   # a quick look
    .venv/bin/python benchmarks/swd_seeds.py --reuse      # re-evaluate finished runs of the same settings
    .venv/bin/python benchmarks/swd_seeds.py --table-of benchmarks/published/swd_seeds.json  # re-summarize
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
from hydra import compose, initialize_config_dir  # noqa: E402

from stylegan_exp.config import MetricsConfig, to_object  # noqa: E402
from stylegan_exp.data.images import load_image  # noqa: E402
from stylegan_exp.data.writer import pack_arrays  # noqa: E402
from stylegan_exp.metrics.evaluate import fake_batches, real_batches  # noqa: E402
from stylegan_exp.metrics.swd import SWD  # noqa: E402
from stylegan_exp.models import load_snapshot, network  # noqa: E402
from stylegan_exp.nets.layers import downscale2d  # noqa: E402
from stylegan_exp.schemas import register_configs  # noqa: E402
from stylegan_exp.train.loop import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FACES = REPO.parent / "shared" / "data" / "anime_faces_64"
LEVELS = ("swd_32", "swd_16", "swd_mean")
log = logging.getLogger("swd_seeds")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1000, 2000, 3000, 4000, 5000])
    p.add_argument("--precisions", nargs="+", default=["float32", "auto"],
                   help="model.precision values (auto: mixed_bfloat16 on a CPU with bfloat16 arithmetic)")
    p.add_argument("--kimg", type=float, default=24, help="training length of every run")
    p.add_argument("--tick-kimg", type=float, default=2, help="tick length: one r_t / loss point per tick")
    p.add_argument("--snapshot-kimg", type=float, default=4, help="network snapshot interval")
    p.add_argument("--curve-points", type=int, default=3, help="SWD of this many last snapshots per run")
    p.add_argument("--metric-seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="metrics.seed values for the final snapshot (fakes' latents and SWD's sampling)")
    p.add_argument("--faces", type=Path, default=FACES, help="the 1,000 shared anime face crops")
    p.add_argument("--reuse", action="store_true",
                   help="evaluate a setting's finished run in --work instead of training it again")
    p.add_argument("--work", type=Path, default=RESULTS / "swd_seeds", help="dataset and runs")
    p.add_argument("--out", type=Path, default=RESULTS / "swd_seeds.json", help="JSON results file")
    p.add_argument("--table-of", type=Path,
                   help="summarize the runs of this results file again (printed, written back); no training")
    args = p.parse_args(argv)
    if args.snapshot_kimg < args.tick_kimg or args.snapshot_kimg % args.tick_kimg:
        p.error("--snapshot-kimg must be a whole number of ticks (--tick-kimg)")
    return args


def pack_faces(faces_dir: Path, work: Path) -> Path:
    """The 1,000 crops box-filtered to 32²: the training set and the SWD reference."""
    files = sorted(faces_dir.glob("*.jpg"))
    if len(files) != 1000:
        raise SystemExit(f"expected the 1,000 crops in {faces_dir}, found {len(files)}")
    faces = np.stack([load_image(f, 3) for f in files])
    faces = np.round(downscale2d(faces).numpy()).astype(np.uint8)
    path = work / "data" / "faces1000-32"
    if path.exists():
        shutil.rmtree(path)
    pack_arrays(faces, path, meta={"name": path.name})
    return path


def overrides(args: argparse.Namespace, data: Path, seed: int, precision: str, run_dir: Path) -> list[str]:
    """The race's settings: `schedule=demo` (ticks of tick_kimg_base at every resolution) with the rest set
    back to the paper's values."""
    tick = args.tick_kimg
    return [
        "model=small", "gpus=cpu", "schedule=demo", "dataset=folder", f"dataset.path={data}",
        "dataset.resolution=32", "dataset.mirror=false", "schedule.lod_initial_resolution=32",
        "schedule.G_lrate_base=0.001", "schedule.D_lrate_base=0.001", "schedule.G_smoothing_kimg=10",
        "schedule.minibatch_repeats=4", "schedule.D_repeats=1", f"schedule.total_kimg={args.kimg}",
        "schedule.max_minutes=null", f"schedule.tick_kimg_base={tick}",
        f"schedule.network_snapshot_ticks={round(args.snapshot_kimg / tick)}",
        "schedule.image_snapshot_ticks=1000000", "model.r1_gamma=10", "model.style_mixing_prob=0.9",
        f"model.precision={precision}", "metrics=none", "logger=none", "augment=none", f"seed={seed}",
        f"name=swd-seeds-{precision}-{seed}", f"outputs_root={run_dir.parent}",
        "run.checkpoint_kimg=100000", "run.checkpoint_minutes=100000",
    ]


def ticks(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = ("kimg", "loss/G", "loss/D", "loss/R1", "score/real", "score/fake", "augment/rt", "sec_per_kimg")
    return [{k: r[k] for k in keys if k in r} for r in rows if "tick" in r]


def finished(run_dir: Path, kimg: float) -> bool:
    history = ticks(run_dir) if (run_dir / "metrics.jsonl").is_file() else []
    return bool(history) and history[-1]["kimg"] >= kimg


def train(args: argparse.Namespace, data: Path, seed: int, precision: str, run_dir: Path) -> float:
    """One run into `run_dir`; returns its wall seconds."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = to_object(compose("train", overrides=overrides(args, data, seed, precision, run_dir)))
    if run_dir.exists():
        shutil.rmtree(run_dir)
    start = time.time()
    Trainer(cfg, run_dir).run()
    return time.time() - start


class SWDMeter:
    """SWD (×10³) per level and their mean, as metrics/evaluate.py computes it (all 1,000 crops against 1,000
    untruncated fakes, `metrics.seed` = the metric seed), the crops' descriptors computed once per seed."""

    def __init__(self, data: Path) -> None:
        self.data, self.cfg = data, MetricsConfig(name="swd", kinds=["swd"], num_images=1000)
        self.reals: dict[int, list[np.ndarray]] = {}

    def __call__(self, snapshot: Path, seed: int) -> dict[str, float]:
        n, batch = self.cfg.num_images, self.cfg.minibatch
        swd = SWD(32, self.cfg.swd, seed)
        if seed not in self.reals:
            self.reals[seed] = swd.descriptors(real_batches(self.data, 32, n, batch, seed))
        fakes = swd.descriptors(fake_batches(network(load_snapshot(snapshot), "Gs"), n, batch, seed))
        return swd.distance(self.reals[seed], fakes)


def measure(args: argparse.Namespace, meter: SWDMeter, run_dir: Path) -> dict[str, Any]:
    """The final snapshot under every metric seed, and the last snapshots under the first."""
    snapshots = sorted(run_dir.glob("network-snapshot-*.npz"))
    by_seed = [meter(snapshots[-1], s) for s in args.metric_seeds]
    curve = [{"kimg": load_snapshot(p).kimg, **meter(p, args.metric_seeds[0])}
             for p in snapshots[-args.curve_points:-1]]
    curve.append({"kimg": load_snapshot(snapshots[-1]).kimg, **by_seed[0]})
    return {"swd": by_seed[0], "swd_metric_seeds": by_seed, "swd_curve": curve}


def spread(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
            "min": float(a.min()), "max": float(a.max())}


def within(groups: list[list[float]]) -> float:
    """The root-mean-square standard deviation within groups (nan without two values in a group)."""
    variances = [np.var(g, ddof=1) for g in groups if len(g) > 1]
    return float(np.sqrt(np.mean(variances))) if variances else float("nan")


def slope(curve: list[dict[str, float]], level: str) -> float:
    """SWD change per kimg between the first and the last snapshot of `curve`."""
    return (curve[-1][level] - curve[0][level]) / (curve[-1]["kimg"] - curve[0]["kimg"])


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per precision and level: the spread over seeds of the final SWD; the typical (root-mean-square)
    spread over metric seeds within a run; the mean SWD change per kimg over the last snapshots, and the seed
    spread in those kimg of progress; the late ticks' r_t and losses."""
    out = {}
    for precision in dict.fromkeys(r["precision"] for r in runs):
        rows = [r for r in runs if r["precision"] == precision]
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in rows],
                                 "resolved": rows[0]["resolved_precision"]}
        for level in LEVELS:
            entry[level] = spread([r["swd"][level] for r in rows])
            entry[f"{level}_std"] = entry[level]["std"]
            entry[f"{level}_metric_noise"] = within([[m[level] for m in r["swd_metric_seeds"]] for r in rows])
            entry[f"{level}_slope"] = float(np.mean([slope(r["swd_curve"], level) for r in rows]))
            entry[f"{level}_spread_kimg"] = entry[level]["std"] / abs(entry[f"{level}_slope"])
        late = [t for r in rows for t in r["ticks"][len(r["ticks"]) // 2:]]
        for key in ("augment/rt", "loss/G", "loss/D", "score/real", "score/fake"):
            entry[f"late_{key}"] = spread([t[key] for t in late if key in t])
        entry["sec_per_kimg"] = float(np.mean([r["seconds"] / r["kimg"] for r in rows]))
        out[precision] = entry
    return out


def format_tables(runs: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    from train_speed import aligned

    head = ("precision", "seed", "SWD 32", "SWD 16", "SWD mean", "r_t (late ticks)", "G / D loss (late)",
            "min")
    body = []
    for r in runs:
        late = r["ticks"][len(r["ticks"]) // 2:]
        losses = [np.mean([t[k] for t in late]) for k in ("loss/G", "loss/D")]
        body.append((r["resolved_precision"], str(r["seed"]), *(f"{r['swd'][k]:.1f}" for k in LEVELS),
                     f"{np.mean([t['augment/rt'] for t in late]):.2f}", f"{losses[0]:.2f} / {losses[1]:.2f}",
                     f"{r['seconds'] / 60:.1f}"))
    for s in summary.values():
        body.append((s["resolved"], "mean ± std",
                     *(f"{s[k]['mean']:.1f} ± {s[k]['std']:.1f}" for k in LEVELS),
                     f"{s['late_augment/rt']['mean']:.2f}",
                     f"{s['late_loss/G']['mean']:.2f} / {s['late_loss/D']['mean']:.2f}", ""))
        body.append((s["resolved"], "min – max", *(f"{s[k]['min']:.1f} – {s[k]['max']:.1f}" for k in LEVELS),
                     "", "", ""))
    noise_head = ("precision", "std over seeds 32 / 16", "metric-seed noise 32 / 16",
                  "SWD per kimg at the end 32 / 16", "std over seeds in kimg 32 / 16")
    noise = [(s["resolved"], *(f"{s[f'swd_32{kind}']:.1f} / {s[f'swd_16{kind}']:.1f}"
                               for kind in ("_std", "_metric_noise", "_slope", "_spread_kimg")))
             for s in summary.values()]
    return aligned(head, body) + "\n\n" + aligned(noise_head, noise)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import machine_info, write_results

    from stylegan_exp.steps.precision import resolve_precision

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if args.table_of:
        result = json.loads(args.table_of.read_text())
        result["summary"] = summarize(result["runs"])
        print(format_tables(result["runs"], result["summary"]))
        write_results(args.table_of, result)
        return result
    register_configs()
    args.work.mkdir(parents=True, exist_ok=True)
    data = pack_faces(args.faces, args.work)
    meter = SWDMeter(data)
    runs = []
    for precision in args.precisions:
        for seed in args.seeds:
            run_dir = args.work / "runs" / f"{precision}-{seed}"
            if args.reuse and finished(run_dir, args.kimg):
                log.info("evaluating the finished run %s", run_dir)
                seconds = sum(t["sec_per_kimg"] for t in ticks(run_dir)) * args.tick_kimg
            else:
                log.info("training precision=%s seed=%d for %g kimg", precision, seed, args.kimg)
                seconds = train(args, data, seed, precision, run_dir)
            history = ticks(run_dir)
            runs.append({"precision": precision, "resolved_precision": str(resolve_precision(precision)),
                         "seed": seed, "kimg": history[-1]["kimg"], "seconds": seconds, "ticks": history,
                         "run_dir": str(run_dir), **measure(args, meter, run_dir)})
            log.info("seed %d %s: %s", seed, precision,
                     "  ".join(f"{k} {v:.1f}" for k, v in runs[-1]["swd"].items()))
    summary = summarize(runs)
    print()
    print(format_tables(runs, summary))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = {"machine": machine_info(), "settings": settings, "overrides": overrides(
        args, Path("<data>"), 0, "<precision>", Path("<runs>/<name>")), "summary": summary, "runs": runs}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
