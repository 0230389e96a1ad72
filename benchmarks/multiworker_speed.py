"""Multi-worker training speed: one global minibatch trained by 1 process or by N worker processes.

The workers run on this machine over loopback (TF_CONFIG), sharing its cores, so this measures what the
multi-worker path costs (gradient all-reduce between processes, the per-iteration agreement on stops
and checkpoints, each worker's share of the batch), not how training scales across hosts.

    .venv/bin/python benchmarks/multiworker_speed.py                      # 1 vs 2 processes at 32²
    .venv/bin/python benchmarks/multiworker_speed.py --resolution 64 --batch 32
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# First the package: it quiets TensorFlow's start-up log before TensorFlow is imported.
importlib.import_module("stylegan_exp")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "multiworker_speed.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    p.add_argument("--model", default="small", help="the `model` preset (conf/model/<name>.yaml)")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--batch", type=int, default=16, help="global minibatch (images per iteration)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (the first ones trace)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations")
    p.add_argument("--agree-reps", type=int, default=200, help="timed agreements (one per loop iteration)")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--index", type=int, default=None, help=argparse.SUPPRESS)  # set for worker processes
    p.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """One worker: build the nets on the strategy, train on this worker's share, time it."""
    import tensorflow as tf
    from train_speed import load_model

    from stylegan_exp.models import architecture
    from stylegan_exp.resolution import log2_int
    from stylegan_exp.schedule import gs_beta
    from stylegan_exp.train.distribute import WorkerGroup, make_strategy, network_scope

    threads = max(1, (os.cpu_count() or 1) // args.count)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    workers = WorkerGroup(make_strategy("multiworker" if args.count > 1 else "default"))
    model = load_model(args.model)
    res, level = args.resolution, log2_int(args.resolution)
    tf.random.set_seed(args.seed)
    with network_scope(workers.strategy):
        G, D, Gs = _build(model, res)
    steps = architecture(model).steps(G, D, Gs, model, args.seed, strategy=workers.strategy,
                                      worker=(workers.index, workers.count))
    steps.update_gs(tf.constant(0.0))
    steps.set_learning_rates(0.001, 0.001)
    reals = steps.share(tf.random.stateless_uniform([args.batch, res, res, 3], [args.seed, 0], -1.0, 1.0))
    fade, batch = tf.constant(0.0), tf.constant(args.batch)
    beta = tf.constant(gs_beta(args.batch, 10.0), tf.float32)

    def iteration() -> None:
        out = steps.d_step(reals, level, fade)
        steps.update_gs(beta)
        out.update(steps.g_step(batch, level, fade))
        for v in out.values():
            float(v)
        workers.any_of([False, False, False, False])  # as the loop agrees on stops after each iteration

    times = []
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        iteration()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(args.agree_reps):
        workers.any_of([False, False, False, False])
    agree_ms = (time.perf_counter() - t0) / args.agree_reps * 1000
    sec_iter = sum(times) / len(times)
    grads = sum(int(tf.size(v)) for net in (G, D) for v in net.trainable_variables)
    return {"processes": args.count, "threads_each": threads, "share": int(reals.shape[0]),
            "sec_per_iter": sec_iter, "sec_per_iter_min": min(times), "img_per_sec": args.batch / sec_iter,
            "agree_ms": agree_ms if args.count > 1 else 0.0, "allreduce_mb_per_iter": grads * 4 / 2**20,
            "iter_times": times}


def _build(model: dict[str, Any], res: int) -> tuple[Any, Any, Any]:
    from stylegan_exp.models import build_discriminator, build_generator

    return build_generator(model, res), build_discriminator(model, res), build_generator(model, res)


def _tf_configs(count: int) -> list[str]:
    ports = []
    for _ in range(count):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(count)]


def measure(args: argparse.Namespace, count: int) -> dict[str, Any]:
    """Start `count` worker processes and return the chief's measurements."""
    options = {"--model": args.model, "--resolution": args.resolution, "--batch": args.batch,
               "--warmup": args.warmup, "--iters": args.iters, "--agree-reps": args.agree_reps,
               "--seed": args.seed, "--count": count}
    base = [sys.executable, __file__, *(str(x) for item in options.items() for x in item)]
    configs = _tf_configs(count) if count > 1 else [""]
    procs = [subprocess.Popen([*base, "--index", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "TF_CONFIG": config} if config else None)
             for i, config in enumerate(configs)]
    outputs = [p.communicate(timeout=1800) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        if p.returncode:
            raise SystemExit(f"a worker failed:\n{err[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]]) -> str:
    from train_speed import aligned

    head = ("processes", "threads each", "images each", "img/s", "sec/iter", "vs 1 process", "agree ms",
            "all-reduce MB/iter")
    one = next((r["img_per_sec"] for r in rows if r["processes"] == 1), None)
    body = [(str(r["processes"]), str(r["threads_each"]), str(r["share"]), f"{r['img_per_sec']:.1f}",
             f"{r['sec_per_iter']:.3f}", f"{r['img_per_sec'] / one:.2f}×" if one else "-",
             f"{r['agree_ms']:.2f}", f"{r['allreduce_mb_per_iter']:.1f}") for r in rows]
    return aligned(head, body)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.index is not None:
        print(json.dumps(run_worker(args)))
        return None
    from train_speed import machine_info, write_results

    rows = []
    for count in args.workers:
        print(f"{count} process(es): {args.warmup} warm-up + {args.iters} timed iterations …",
              file=sys.stderr)
        rows.append(measure(args, count))
    print()
    print(format_table(rows))
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                if k not in ("index", "count")}
    result = {"machine": machine_info(), "settings": settings, "results": rows}
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
