"""StyleGAN training speed on this machine for one fixed model size at several resolutions.

Times the project's real training iteration (D step + Gs update + G step, as `stylegan_exp.train.loop`
runs it) on synthetic reals, so data loading is excluded. FLOPs per iteration come from the traced
graphs via the TF profiler; dividing by the measured time and by a float32 matmul peak measured in the
same process shows how far the model is from what this CPU can do.

    .venv/bin/python benchmarks/train_speed.py                      # small.yaml, 32² 64² 128²
    .venv/bin/python benchmarks/train_speed.py --fmap-max 256 --batch 8 --resolutions 64
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from tensorflow.python.framework import ops as tf_ops  # noqa: E402  (per-op FLOP stats, diagnostics only)
from tqdm import tqdm  # noqa: E402

from stylegan_exp.config import ModelConfig, Precision, register_configs, to_object  # noqa: E402
from stylegan_exp.nets.build import build_discriminator, build_generator  # noqa: E402
from stylegan_exp.resolution import log2_int  # noqa: E402
from stylegan_exp.train.schedule import gs_beta  # noqa: E402
from stylegan_exp.train.steps import Steps  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "train_speed.json"
# Ops that move or describe data rather than compute; their missing FLOP stats do not matter.
NON_ARITHMETIC = {
    "AssignVariableOp", "BroadcastTo", "Cast", "ConcatV2", "Const", "ExpandDims", "Fill", "Identity",
    "IdentityN", "NoOp", "Pack", "Pad", "Placeholder", "Range", "ReadVariableOp", "Reshape", "Shape",
    "ShapeN", "Slice", "Split", "Squeeze", "StopGradient", "StridedSlice", "StridedSliceGrad", "Tile",
    "Transpose", "Unpack", "ZerosLike", "OnesLike", "RngReadAndSkip", "StatelessRandomGetKeyCounter",
    "StatelessRandomGetKeyCounterAlg", "StatelessRandomNormalV2", "StatelessRandomUniformV2",
    "StatelessRandomUniformIntV2", "StatelessRandomUniformFullIntV2", "BroadcastGradientArgs",
    "VarHandleOp", "_Arg", "_Retval", "Prod", "Size", "Rank", "DynamicStitch", "InvertPermutation",
    "GatherV2", "Where", "Merge", "Switch", "PreventGradient", "Bitcast", "ConcatOffset", "FloorDiv",
    "FloorMod", "RandomStandardNormal",
}
DEPTHWISE_GRADS = {"DepthwiseConv2dNativeBackpropInput", "DepthwiseConv2dNativeBackpropFilter"}
CALL_OPS = {"PartitionedCall", "StatefulPartitionedCall", "While", "StatelessWhile", "If", "StatelessIf"}
log = logging.getLogger("train_speed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="small", help="the `model` preset (conf/model/<name>.yaml)")
    p.add_argument("--fmap-base", type=int, default=None, help="override the config's fmap_base")
    p.add_argument("--fmap-max", type=int, default=None, help="override the config's fmap_max")
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--batch", type=int, default=16, help="minibatch (images per iteration)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (the first one traces)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per resolution")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n×n float32 matmul peak test")
    p.add_argument("--matmul-reps", type=int, default=20, help="matmuls per timed round (best of 3 rounds)")
    p.add_argument("--intra-op-threads", type=int, default=0, help="0 = TensorFlow's default")
    p.add_argument("--inter-op-threads", type=int, default=0, help="0 = TensorFlow's default")
    p.add_argument("--precision", choices=[p.value for p in Precision], default="float32",
                   help="model.precision: compute dtype of synthesis and D (weights stay float32)")
    p.add_argument("--xla", action="store_true", help="model.jit_compile: XLA for the per-replica step")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = p.parse_args(argv)
    for res in args.resolutions:
        log2_int(res, "--resolutions")
    if min(args.batch, args.iters, args.matmul_size, args.matmul_reps) < 1 or args.warmup < 1:
        p.error("--batch, --iters, --warmup, --matmul-size and --matmul-reps must be ≥ 1")
    return args


def load_model(name: str, *overrides: str) -> ModelConfig:
    """The composed `model=<name>` preset as train.py sees it, so the benchmark follows config changes;
    `overrides` are `model.<key>=<value>` strings."""
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return to_object(compose("train", overrides=[f"model={name}", *overrides])).model


def matmul_peak(n: int, reps: int) -> float:
    """Best-of-3 float32 matmul GFLOP/s: the practical ceiling for conv-heavy work on this CPU."""
    a = tf.random.normal([n, n], seed=1)
    b = tf.random.normal([n, n], seed=2)
    for _ in range(3):
        tf.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            c = tf.matmul(a, b)
        c.numpy()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * reps / best / 1e9


def count_flops(graph: tf.Graph, parents: tuple[tf.Graph, ...] = ()) -> dict[str, Any]:
    """FLOPs of one call of a traced function, plus what the count cannot see.

    The profiler does not enter nested function calls (Steps runs each replica's forward/backward as an
    inner tf.function), so their graphs are counted recursively and added. The per-op pass repeats the
    profiler's lookup to list op types without registered FLOP stats and ops skipped for unknown shapes.
    """
    opts = (tf.compat.v1.profiler.ProfileOptionBuilder(
        tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build())
    total = int(tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops)
    by_type: Counter[str] = Counter()
    uncounted: Counter[str] = Counter()
    unknown_shape: Counter[str] = Counter()
    entered: Counter[str] = Counter()
    not_entered: Counter[str] = Counter()
    missed = 0
    for op in graph.get_operations():
        if op.type in CALL_OPS:
            inner = _called_graph(op, (graph, *parents))
            if inner is None:
                not_entered[op.type] += 1
                continue
            sub = count_flops(inner, (graph, *parents))
            entered[op.type] += 1
            total += sub["total"]
            missed += sub["uncounted_rough"]
            for mine, theirs in ((by_type, "by_type"), (uncounted, "uncounted_types"),
                                 (unknown_shape, "unknown_shape_ops"), (entered, "calls_entered"),
                                 (not_entered, "calls_not_entered")):
                mine.update(sub[theirs])
            continue
        try:
            stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except ValueError:
            unknown_shape[op.type] += 1
            continue
        if stats.value is None:
            if op.type not in NON_ARITHMETIC:
                uncounted[op.type] += 1
                missed += _rough_flops(op)
        else:
            by_type[op.type] += int(stats.value)
    return {"total": total, "by_type": dict(by_type.most_common()), "uncounted_types": dict(uncounted),
            "unknown_shape_ops": dict(unknown_shape), "calls_entered": dict(entered),
            "calls_not_entered": dict(not_entered), "uncounted_rough": missed}


def _called_graph(op: tf.Operation, graphs: tuple[tf.Graph, ...]) -> tf.Graph | None:
    """The FuncGraph a (Stateful)PartitionedCall runs, looked up in the enclosing graphs' libraries;
    None for control flow (While/If) or when this TF version hides it."""
    try:
        name = op.get_attr("f").name
    except ValueError:
        return None
    for g in graphs:
        try:
            fn = g._get_function(name)  # noqa: SLF001  (no public lookup from a call op to its graph)
        except Exception:  # noqa: BLE001
            fn = None
        if fn is not None and isinstance(getattr(fn, "graph", None), tf.Graph):
            return fn.graph
    return None


def _rough_flops(op: tf.Operation) -> int:
    """Order-of-magnitude FLOPs of an op without stats: 1 per output element, 2·kh·kw per element of
    the activation for the depthwise blur's gradients. Only used to say how loose the lower bound is."""
    if op.type in DEPTHWISE_GRADS:
        act = op.outputs[0].shape if op.type.endswith("Input") else op.inputs[0].shape
        kernel = op.inputs[1].shape if op.type.endswith("Input") else op.outputs[0].shape
        if act.is_fully_defined() and kernel.is_fully_defined():
            return 2 * kernel[0] * kernel[1] * act.num_elements()
        return 0
    return sum(t.shape.num_elements() or 0 for t in op.outputs if t.shape.is_fully_defined())


def bench_resolution(model: ModelConfig, res: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fresh G/D/Gs at full depth for `res`, driven exactly like one lod-stable loop iteration."""
    tf.random.set_seed(args.seed)
    level = log2_int(res)
    G, D, Gs = build_generator(model, res), build_discriminator(model, res), build_generator(model, res)
    steps = Steps(G, D, Gs, model, args.seed)
    steps.update_gs(tf.constant(0.0))
    steps.set_learning_rates(0.001, 0.001)
    reals = tf.random.uniform([args.batch, res, res, 3], -1.0, 1.0, seed=args.seed)
    fade = tf.constant(0.0)
    beta = tf.constant(gs_beta(args.batch, 10.0), tf.float32)
    batch = tf.constant(args.batch)

    def iteration() -> None:
        out = steps.d_step(reals, level, fade)
        steps.update_gs(beta)
        out.update(steps.g_step(batch, level, fade))
        for v in out.values():  # the loop reads every output each iteration; this also syncs
            float(v)

    times: list[float] = []
    bar = tqdm(total=args.warmup + args.iters, desc=f"{res}²", unit="it", leave=False, file=sys.stderr)
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        iteration()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
        bar.update()
    bar.close()

    # g_step is timed with a tensor batch (as the loop calls it), so its graphs have an unknown batch dim
    # that the profiler skips, and an int-batch retrace on the same Steps would reuse the relaxed inner
    # replica trace. A separate Steps on the same nets traces them afresh with a Python-int batch.
    counter = Steps(G, D, Gs, model, args.seed)
    graphs = {
        "d_step": counter.d_step.get_concrete_function(reals, level, fade).graph,
        "update_gs": counter.update_gs.get_concrete_function(beta).graph,
        "g_step": counter.g_step.get_concrete_function(args.batch, level, fade).graph,
    }
    flops = {name: count_flops(g) for name, g in graphs.items()}
    flops_iter = sum(f["total"] for f in flops.values())
    sec_iter = sum(times) / len(times)
    n_params = {name: int(sum(np.prod(v.shape) for v in net.trainable_variables))
                for name, net in (("G", G), ("D", D))}
    return {
        "resolution": res, "level": level, "batch": args.batch, "iters": args.iters,
        "sec_per_iter": sec_iter, "sec_per_iter_median": statistics.median(times),
        "sec_per_iter_min": min(times), "sec_per_iter_max": max(times), "iter_times": times,
        "img_per_sec": args.batch / sec_iter, "sec_per_kimg": sec_iter * 1000 / args.batch,
        "gflop_per_iter": flops_iter / 1e9, "gflop_per_sec": flops_iter / sec_iter / 1e9,
        "flops": flops, "trainable_params": n_params,
    }


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "loadavg_at_end": list(os.getloadavg()),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    head = ("resolution", "batch", "precision", "XLA",
            "img/s", "sec/kimg", "GFLOP/iter", "GFLOP/s", "% of matmul peak")
    body = [(f"{r['resolution']}²", str(r["batch"]), r["precision"], "on" if r["xla"] else "off",
             f"{r['img_per_sec']:.2f}", f"{r['sec_per_kimg']:.1f}",
             f"{r['gflop_per_iter']:.2f}", f"{r['gflop_per_sec']:.1f}", f"{r['pct_of_matmul_peak']:.1f}")
            for r in rows]
    return aligned(head, body)


def aligned(head: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
    """A plain-text table with right-aligned columns, for the terminal."""
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def write_results(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


def flop_notes(rows: list[dict[str, Any]]) -> list[str]:
    """Say plainly when GFLOP/iter is a lower bound, and why."""
    uncounted: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    entered: Counter[str] = Counter()
    worst = 0.0
    for r in rows:
        worst = max(worst, sum(f["uncounted_rough"] for f in r["flops"].values()) / 1e9 / r["gflop_per_iter"])
        for f in r["flops"].values():
            uncounted.update(f["uncounted_types"])
            unknown.update(f["unknown_shape_ops"])
            calls.update(f["calls_not_entered"])
            entered.update(f["calls_entered"])
    notes = []
    if uncounted:
        notes.append("GFLOP/iter is a lower bound: no registered FLOP stats for "
                     + ", ".join(sorted(uncounted)) + " (mostly element-wise ops and the depthwise blur's "
                     "gradients; the convolutions and their gradients are counted). A rough estimate of the "
                     f"missing work is at most {100 * worst:.1f}% of the counted FLOPs.")
    if unknown:
        notes.append("ops skipped for unknown shapes: " + ", ".join(f"{k}×{v}" for k, v in unknown.items()))
    if entered:
        notes.append("the traced steps call nested tf.functions (" + ", ".join(f"{k}×{v}" for k, v in
                     entered.items()) + ") that the profiler does not enter; they were counted separately.")
    if calls:
        notes.append("nested calls that could not be counted (FLOPs missing): "
                     + ", ".join(f"{k}×{v}" for k, v in calls.items()))
    return notes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    tf.get_logger().setLevel(logging.ERROR)  # the profiler's own TF1 deprecation warnings
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    overrides = [f"model.precision={args.precision}", f"model.jit_compile={args.xla}"]
    overrides += [f"model.{key}={value}" for key, value in (("fmap_base", args.fmap_base),
                                                            ("fmap_max", args.fmap_max)) if value is not None]
    model = load_model(args.model, *overrides)
    log.info("model %s (%s), batch %d, %d warm-up + %d timed iterations", args.model,
             ", ".join(f"{k}={getattr(model, k)}" for k in ("fmap_base", "fmap_max", "latent_size")),
             args.batch, args.warmup, args.iters)

    load_start = os.getloadavg()[0]
    peak = matmul_peak(args.matmul_size, args.matmul_reps)
    log.info("matmul peak %d×%d float32: %.1f GFLOP/s", args.matmul_size, args.matmul_size, peak)
    rows = []
    for res in args.resolutions:
        row = bench_resolution(model, res, args)
        row["pct_of_matmul_peak"] = 100 * row["gflop_per_sec"] / peak
        row["precision"], row["xla"] = args.precision, args.xla
        rows.append(row)
        log.info("%4d²: %.2f img/s, %.1f sec/kimg, %.2f GFLOP/iter, %.1f GFLOP/s (%.1f%% of 1st matmul peak)",
                 res, row["img_per_sec"], row["sec_per_kimg"], row["gflop_per_iter"], row["gflop_per_sec"],
                 row["pct_of_matmul_peak"])
    peak_after = matmul_peak(args.matmul_size, args.matmul_reps)
    if peak_after > peak:  # contention only lowers a peak: the higher measurement is the better ceiling
        for row in rows:
            row["pct_of_matmul_peak"] = 100 * row["gflop_per_sec"] / peak_after

    notes = flop_notes(rows)
    load_end = os.getloadavg()[0]
    if max(load_start, load_end) > 0.5 * (os.cpu_count() or 1):
        notes.append(f"1-min load average was {load_start:.1f} at the start and {load_end:.1f} at the end "
                     f"on {os.cpu_count()} CPUs: other processes competed for the CPU.")
    if abs(peak_after - peak) > 0.15 * peak:
        notes.append(f"matmul peak moved from {peak:.1f} to {peak_after:.1f} GFLOP/s during the run: "
                     "the machine was probably busy, so treat the numbers with care.")
    print()
    print(format_table(rows))
    print(f"\nmatmul peak ({args.matmul_size}² float32, best of 3×{args.matmul_reps}): {peak:.1f} GFLOP/s "
          f"(re-measured after: {peak_after:.1f}; % uses the higher)")
    for note in notes:
        print("note:", note)

    result = {
        "machine": {**machine_info(), "loadavg_at_start": load_start},
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "model": asdict(model)},
        "matmul_peak_gflops": peak, "matmul_peak_gflops_after": peak_after,
        "results": rows, "notes": notes,
    }
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
