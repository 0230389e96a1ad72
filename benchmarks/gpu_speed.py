"""Training speed and peak memory on whatever accelerator TensorFlow finds, in the peers' format
(stylegan2-ada-pytorch's table: sec/kimg and GB per configuration): StyleGAN and StyleGAN2, each resolution,
float32 / mixed precision, XLA off / on, 1..N devices. Ready for the first day a GPU is available:

    python benchmarks/gpu_speed.py                              # 128²–1024², everything this machine has
    python benchmarks/gpu_speed.py --resolutions 256 1024 --devices 1 8 --precision mixed

Each configuration runs in a fresh process (so one's memory does not count in the next's): the package's own
training steps (D step with its regularization, G step, Gs update) on fixed reals at the full resolution with
the configuration's global minibatch (`--batch`, default the paper's 4 per device at 1024², more below),
`--warmup` iterations untimed (tracing), then `--steps` timed. Peak memory is TensorFlow's peak on GPU 0
(tf.config.experimental.get_memory_info), on the CPU the process's peak RSS above what it held before building
the networks. Prints a table and writes JSON (`--out`, default benchmarks/published/gpu_speed.json).
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PACKAGE = importlib.import_module("stylegan_exp")  # quiets TensorFlow's start-up log before its import

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "published" / "gpu_speed.json"


def default_batch(resolution: int, devices: int) -> int:
    """The peers' per-GPU batch: 4 at 1024² and 512², 8 at 256², 16 at 128² and below (× devices)."""
    per_device = 4 if resolution >= 512 else 8 if resolution >= 256 else 16
    return per_device * devices


def host_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(arch: str, resolution: int, batch: int, precision: str, xla: bool, devices: int, steps: int,
            warmup: int, overrides: list[str]) -> dict[str, Any]:
    """Time `steps` iterations of one configuration in this process; returns its row."""
    import tensorflow as tf
    from hydra import compose, initialize_config_dir

    from stylegan_exp.config import to_object
    from stylegan_exp.models import architecture, build_discriminator, build_generator
    from stylegan_exp.schemas import register_configs
    from stylegan_exp.train.distribute import network_scope

    gpus = tf.config.list_physical_devices("GPU")
    strategy = (tf.distribute.MirroredStrategy([f"/gpu:{i}" for i in range(devices)]) if devices > 1
                else tf.distribute.get_strategy())
    register_configs()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = to_object(compose("train", overrides=[f"model={arch}", f"model.precision={precision}",
                                                    f"model.jit_compile={str(xla).lower()}", *overrides]))
    before = host_rss_bytes()
    with network_scope(strategy):
        G = build_generator(cfg.model, resolution)
        D = build_discriminator(cfg.model, resolution)
        Gs = build_generator(cfg.model, resolution)
    train = architecture(cfg.model).steps(G, D, Gs, cfg.model, cfg.seed, strategy=strategy)
    level = resolution.bit_length() - 1
    reals = tf.random.stateless_uniform([batch, resolution, resolution, 3], [0, 0], -1.0, 1.0)
    count = tf.constant(batch)
    beta = tf.constant(0.999)

    def iteration() -> None:
        train.d_step(reals, level, 0.0)
        train.update_gs(beta)
        out = train.g_step(count, level, 0.0)
        float(next(iter(out.values())))  # wait for the step

    for _ in range(warmup):
        iteration()
    started = time.perf_counter()
    steps = max(steps, 1)
    for _ in range(steps):
        iteration()
    seconds = time.perf_counter() - started
    if gpus:
        peak = max(tf.config.experimental.get_memory_info(f"GPU:{i}")["peak"] for i in range(max(devices, 1)))
        device = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    else:
        peak, device = host_rss_bytes() - before, platform.processor() or platform.machine()
    return {"model": arch, "resolution": resolution, "batch": batch, "precision": precision, "xla": xla,
            "devices": devices, "device": device, "steps": steps,
            "sec_per_kimg": seconds / (steps * batch) * 1000, "peak_gb": peak / 2**30}


def run_child(config: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One configuration in a fresh process; a failure (out of memory …) is a row with its last error line."""
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(config)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    error = (proc.stderr.strip().splitlines() or ["failed"])[-1]
    return {**config, "error": error[:200]}


def table(rows: list[dict[str, Any]]) -> str:
    head = (f"{'model':<10} {'res':>5} {'GPUs':>4} {'batch':>5} {'precision':<15} {'XLA':<4} {'sec/kimg':>9} "
            f"{'GB':>6}")
    out = [head]
    for r in rows:
        result = (f"{r['sec_per_kimg']:>9.2f} {r['peak_gb']:>6.2f}" if "error" not in r
                  else f"  failed: {r['error'][:60]}")
        out.append(f"{r['model']:<10} {r['resolution']:>4}² {r['devices']:>4} {r['batch']:>5} "
                   f"{r['precision']:<15} {'on' if r['xla'] else 'off':<4} {result}")
    return "\n".join(out)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["stylegan", "stylegan2"])
    ap.add_argument("--resolutions", nargs="+", type=int, default=[128, 256, 512, 1024])
    ap.add_argument("--precision", nargs="+", choices=["float32", "mixed"], default=["float32", "mixed"])
    ap.add_argument("--xla", nargs="+", choices=["off", "on"], default=["off", "on"])
    ap.add_argument("--devices", nargs="+", type=int, help="device counts (default 1 and all GPUs)")
    ap.add_argument("--batch", type=int, help="global minibatch (default the peers' per-GPU batch × devices)")
    ap.add_argument("--steps", type=int, default=10, help="timed iterations (D step + G step)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--override", nargs="*", default=[], help="train.py overrides, e.g. model.fmap_max=16")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--same-process", action="store_true",
                    help="all configurations in this process (quicker; the CPU's peak RSS carries over)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.child:
        print(json.dumps(measure(**json.loads(args.child))))
        return 0
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    devices = args.devices or sorted({1, max(gpus, 1)})
    mixed = "mixed_float16" if gpus else "mixed_bfloat16"  # float16 needs a GPU's loss-scaled kernels
    rows = []
    for arch in args.models:
        for res in args.resolutions:
            for prec in args.precision:
                for xla in args.xla:
                    for n in devices:
                        batch = args.batch or default_batch(res, n)
                        config = {"arch": arch, "resolution": res, "batch": batch,
                                  "precision": mixed if prec == "mixed" else "float32",
                                  "xla": xla == "on", "devices": n, "steps": args.steps,
                                  "warmup": args.warmup, "overrides": args.override}
                        run = measure(**config) if args.same_process else run_child(config, args.timeout)
                        rows.append(run)
                        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                    "machine": platform.node(), "gpus": gpus, "rows": rows}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
