"""Generator speed for sampling: images per second of Gs eager (as sample.py ran it before) and compiled (as
sample.py, figures, videos and metrics run it now), with another checkout's `generate()` beside it.

The original StyleGAN's `Gs.run` is not part of the project: its figure is quoted from issue 18, measured on
this machine at 64², batch 32, ψ 0.7 (520 img/s). Rounds alternate between the ways of running, and between
processes for another checkout, so load from other processes is shared; the best round counts.

    .venv/bin/python benchmarks/sample_speed.py --baseline ../baseline-f0c1ae8     # model=small at 64²
    .venv/bin/python benchmarks/sample_speed.py --resolution 128 --batch 16
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# First the package (of whichever checkout is on the path): it quiets TensorFlow's log before TF's import.
importlib.import_module("stylegan_exp")

import tensorflow as tf  # noqa: E402
from train_speed import aligned, child_env, load_model, machine_info, write_results  # noqa: E402

from stylegan_exp.models import build_generator  # noqa: E402
from stylegan_exp.resolution import log2_int  # noqa: E402
from stylegan_exp.sample import generate  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "sample_speed.json"
ORIGINAL_GS_RUN = 520.0  # img/s of the original's Gs.run at 64², batch 32, ψ 0.7 on this machine (issue 18)
log = logging.getLogger("sample_speed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--baseline", type=Path, default=None, help="another checkout whose generate() to time")
    p.add_argument("--model", default="small", help="the `model` preset (conf/model/<name>.yaml)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=32, help="images per generator call")
    p.add_argument("--psi", type=float, default=0.7, help="truncation ψ (cutoff 8, fixed noise)")
    p.add_argument("--images", type=int, default=512, help="images per timed round and way")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best counts")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # time generate() only, as JSON
    args = p.parse_args(argv)
    log2_int(args.resolution, "--resolution")
    if min(args.batch, args.images, args.rounds) < 1:
        p.error("--batch, --images and --rounds must be ≥ 1")
    return args


def ways(args: argparse.Namespace) -> dict[str, Callable[[], None]]:
    """Each way of running Gs on `--images` seeds: a callable that makes them all."""
    tf.random.set_seed(1)
    Gs = build_generator(load_model(args.model), args.resolution)
    seeds = list(range(args.images))
    z = generate.seed_latents(seeds, Gs.latent_size)

    def eager() -> None:
        for i in range(0, len(z), args.batch):
            Gs(tf.constant(z[i : i + args.batch]), psi=args.psi, cutoff=8, randomize_noise=False).numpy()

    def sample_py() -> None:
        generate.generate(Gs, seeds, psi=args.psi, cutoff=8, batch_size=args.batch)

    return {"eager Gs call": eager, "generate() (sample.py)": sample_py}


def rates(fn: Callable[[], None], images: int) -> tuple[float, float]:
    """Images per second of wall time and per CPU-second of this process (which other processes on a
    shared machine disturb far less), after a warm-up call (which traces when compiled)."""
    fn()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return images / (time.perf_counter() - t0), images / (time.process_time() - c0)


def baseline_round(args: argparse.Namespace) -> tuple[float, float]:
    """img/s and img per CPU-s of the other checkout's generate() in one fresh process."""
    argv = [sys.executable, __file__, "--worker", "--model", args.model, "--resolution", str(args.resolution),
            "--batch", str(args.batch), "--psi", str(args.psi), "--images", str(args.images)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=child_env(args.baseline.resolve()),
                          cwd=args.baseline, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"sample benchmark of {args.baseline} failed:\n{proc.stderr[-3000:]}")
    return tuple(json.loads(proc.stdout.strip().splitlines()[-1])["rates"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps({"rates": rates(ways(args)["generate() (sample.py)"], args.images)}))
        return {}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run = ways(args)
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in run}
    if args.baseline is not None:
        measured[f"baseline generate() ({args.baseline.name})"] = []
    loads = [os.getloadavg()[0]]
    for rnd in range(args.rounds):
        for name in list(measured) if rnd % 2 == 0 else list(measured)[::-1]:
            wall, cpu = baseline_round(args) if name.startswith("baseline") else rates(run[name], args.images)
            measured[name].append((wall, cpu))
            loads.append(os.getloadavg()[0])
            log.info("round %d  %-40s %.0f img/s, %.0f img/CPU-s (load %.1f)", rnd + 1, name, wall, cpu,
                     loads[-1])
    rows = [{"way": name, "img_per_sec": max(w for w, _ in r), "img_per_cpu_sec": max(c for _, c in r),
             "rounds": r, "vs_original_gs_run": max(w for w, _ in r) / ORIGINAL_GS_RUN}
            for name, r in measured.items()]
    head = ("way", "img/s (best)", "img/CPU-s (best)", "img/s × original Gs.run")
    body = [(r["way"], f"{r['img_per_sec']:.0f}", f"{r['img_per_cpu_sec']:.0f}",
             f"{r['vs_original_gs_run']:.2f}") for r in rows]
    body.append(("original Gs.run (issue 18, quoted)", f"{ORIGINAL_GS_RUN:.0f}", "", "1.00"))
    print()
    print(f"model {args.model} at {args.resolution}², batch {args.batch}, ψ {args.psi}, {args.images} images "
          f"per round, best of {args.rounds}; 1-min load average {min(loads):.1f}–{max(loads):.1f} on "
          f"{os.cpu_count()} CPUs (the quoted Gs.run figure is from a quiet machine)")
    print(aligned(head, body))
    result = {"machine": {**machine_info(), "loadavg_range": [min(loads), max(loads)]},
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "original_gs_run_img_per_sec": ORIGINAL_GS_RUN, "results": rows}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
