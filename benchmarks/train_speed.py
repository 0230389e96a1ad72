"""StyleGAN training speed on this machine: the real `train.py` loop and its steps alone, side by side with
another checkout of the project (today's code before a change) in the same run.

Two measurements per resolution, each in a fresh process so that another checkout can be timed too:
  * loop: a short `train.py` run at a fixed lod (schedule.lod_initial_resolution = the resolution: no
    growing), no metrics, snapshots or checkpoints; img/s of the ticks after the first (which traces);
  * steps: the loop's own per-iteration recipe (`StyleGANSteps.iteration`: minibatch_repeats × (D step, R1,
    Gs update), G step) on fixed reals, without data loading; FLOPs per iteration come from the traced
    graphs via the TF profiler and are divided by the time and by a float32 matmul peak measured here.
Runs alternate between the checkouts and repeat (`--rounds`); the best of each counts, since other
processes on a shared machine only ever slow a run down. Minibatches are the `gpus=cpu` preset's.

    .venv/bin/python benchmarks/train_speed.py --baseline ../baseline-f0c1ae8    # 32² 64² 128², both sides
    .venv/bin/python benchmarks/train_speed.py --no-loop --resolutions 64 --precision mixed_bfloat16
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

# First the package (of whichever checkout is on the path): it quiets TensorFlow's log before TF's import.
PACKAGE = importlib.import_module("stylegan_exp")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from tensorflow.python.framework import ops as tf_ops  # noqa: E402  (per-op FLOP stats, diagnostics only)

from stylegan_exp.config import ModelConfig, Precision, TrainConfig, to_object  # noqa: E402
from stylegan_exp.models import build_discriminator, build_generator  # noqa: E402
from stylegan_exp.models.stylegan.training import StyleGANSteps  # noqa: E402
from stylegan_exp.resolution import log2_int  # noqa: E402
from stylegan_exp.schedule import training_schedule  # noqa: E402
from stylegan_exp.schemas import register_configs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONF = Path(PACKAGE.__file__).resolve().parents[1] / "conf"  # the configs of the checkout being timed
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
    p.add_argument("--baseline", type=Path, default=None,
                   help="another checkout of the project to time beside this one (e.g. today's main)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds per checkout; the best counts")
    p.add_argument("--no-loop", dest="loop", action="store_false", help="skip the train.py loop runs")
    p.add_argument("--no-steps", dest="steps", action="store_false", help="skip the step-only runs")
    p.add_argument("--model", default="small", help="the `model` preset (conf/model/<name>.yaml)")
    p.add_argument("--fmap-base", type=int, default=None, help="override the config's fmap_base")
    p.add_argument("--fmap-max", type=int, default=None, help="override the config's fmap_max")
    p.add_argument("--resolutions", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--batch", type=int, default=None,
                   help="minibatch (images per step); default: the gpus=cpu preset's at each resolution")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first (the first one traces)")
    p.add_argument("--iters", type=int, default=6, help="timed iterations per resolution (steps)")
    p.add_argument("--loop-ticks", type=int, default=3, help="timed ticks of the loop, after a warm-up tick")
    p.add_argument("--tick-images", type=int, default=512 * 64,
                   help="images per loop tick at 1² (divided by the resolution: 1 kimg at 32²)")
    p.add_argument("--dataset", type=Path, default=None,
                   help="a packed dataset for the loop runs (default: synthetic faces, made once)")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n×n float32 matmul peak test")
    p.add_argument("--matmul-reps", type=int, default=20, help="matmuls per timed round (best of 3 rounds)")
    p.add_argument("--intra-op-threads", type=int, default=0, help="0 = TensorFlow's default")
    p.add_argument("--inter-op-threads", type=int, default=0, help="0 = TensorFlow's default")
    p.add_argument("--precision", choices=[p.value for p in Precision], default="float32",
                   help="model.precision: compute dtype of synthesis and D (weights stay float32)")
    p.add_argument("--xla", action="store_true", help="model.jit_compile: XLA for the per-replica step")
    p.add_argument("--seed", type=int, default=1000)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # steps at this resolution
    args = p.parse_args(argv)
    for res in args.resolutions:
        log2_int(res, "--resolutions")
    if min(args.iters, args.matmul_size, args.matmul_reps, args.rounds, args.loop_ticks, args.warmup) < 1:
        p.error("--iters, --warmup, --rounds, --loop-ticks, --matmul-size and --matmul-reps must be ≥ 1")
    return args


def model_overrides(args: argparse.Namespace) -> list[str]:
    """The `model.*` overrides both the step and the loop runs use."""
    overrides = [f"model={args.model}", f"model.precision={args.precision}", f"model.jit_compile={args.xla}"]
    sizes = (("fmap_base", args.fmap_base), ("fmap_max", args.fmap_max))
    return overrides + [f"model.{key}={value}" for key, value in sizes if value is not None]


def compose_train(*overrides: str) -> TrainConfig:
    """The composed train config as train.py sees it (gpus=cpu, schedule=default unless overridden)."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_object(compose("train", overrides=list(overrides)))


def load_model(name: str, *overrides: str) -> ModelConfig:
    """The composed `model=<name>` preset as train.py sees it, so the benchmark follows config changes;
    `overrides` are `model.<key>=<value>` strings."""
    return compose_train(f"model={name}", *overrides).model


def schedule_overrides(res: int, args: argparse.Namespace) -> list[str]:
    """A fixed lod at `res` (no growing) with the cpu preset's minibatch, or --batch."""
    overrides = [f"schedule.lod_initial_resolution={res}"]
    if args.batch is not None:
        overrides += [f"gpus.minibatch_base={args.batch}", "gpus.minibatch_dict={}"]
    return overrides


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

    The profiler does not enter nested function calls (the steps run each replica's forward/backward as an
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


def bench_steps(res: int, args: argparse.Namespace) -> dict[str, Any]:
    """Fresh G/D/Gs at `res`, driven by the checkout's own steps' iteration at a stable lod (as the loop)."""
    cfg = compose_train(*model_overrides(args), *schedule_overrides(res, args))
    model, sched_cfg = cfg.model, cfg.schedule
    sched = training_schedule(0, sched_cfg, cfg.gpus, res)
    tf.random.set_seed(args.seed)
    G, D, Gs = build_generator(model, res), build_discriminator(model, res), build_generator(model, res)
    steps = StyleGANSteps(G, D, Gs, model, args.seed)
    steps.update_gs(tf.constant(0.0))
    steps.set_learning_rates(sched.G_lrate, sched.D_lrate)
    reals = tf.random.uniform([sched.minibatch, res, res, 3], -1.0, 1.0, seed=args.seed)
    data = repeat(reals)

    def iteration() -> int:
        stats, shown = steps.iteration(data, sched, sched_cfg)
        for out in stats:  # the loop reads every output each iteration; this also syncs
            for v in out.values():
                float(v)
        return shown

    times: list[float] = []
    cpu: list[float] = []  # this process's CPU seconds: less sensitive to other processes than wall time
    for i in range(args.warmup + args.iters):
        t0, c0 = time.perf_counter(), time.process_time()
        shown = iteration()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)

    # FLOPs of one iteration from freshly traced graphs (separate steps on the same nets) with the Python
    # fade 0 (a checkout whose nets compute the fade path anyway traces it all the same) and a Python-int G
    # batch (a tensor batch leaves shapes unknown, which the profiler skips).
    counter = StyleGANSteps(G, D, Gs, model, args.seed)
    fade = 0.0
    graphs = {
        "d_step": counter.d_step.get_concrete_function(reals, sched.level, fade).graph,
        "update_gs": counter.update_gs.get_concrete_function(tf.constant(0.5)).graph,
        "g_step": counter.g_step.get_concrete_function(sched.minibatch, sched.level, fade).graph,
    }
    flops = {name: count_flops(g) for name, g in graphs.items()}
    repeats = shown // sched.minibatch
    flops_iter = repeats * sum(f["total"] for f in flops.values())
    sec_iter = min(times)
    n_params = {name: int(sum(np.prod(v.shape) for v in net.trainable_variables))
                for name, net in (("G", G), ("D", D))}
    return {
        "resolution": res, "batch": sched.minibatch, "images_per_iter": shown, "iters": args.iters,
        "sec_per_iter": sec_iter, "sec_per_iter_median": statistics.median(times), "iter_times": times,
        "img_per_sec": shown / sec_iter, "img_per_cpu_sec": shown / min(cpu),
        "gflop_per_img": flops_iter / shown / 1e9,
        "gflop_per_sec": flops_iter / sec_iter / 1e9, "flops": flops, "trainable_params": n_params,
    }


def run_worker(args: argparse.Namespace) -> None:
    """`--worker RES`: the step benchmark in this process (the checkout on PYTHONPATH), as one JSON line."""
    tf.get_logger().setLevel(logging.ERROR)  # the profiler's own TF1 deprecation warnings
    tf.config.threading.set_intra_op_parallelism_threads(args.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    print(json.dumps(bench_steps(args.worker, args)))


def child_env(checkout: Path) -> dict[str, str]:
    """The environment for a process of `checkout`: its package first on the path, TF's C++ log quiet."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def steps_in(checkout: Path, res: int, argv: list[str]) -> dict[str, Any]:
    """The step benchmark of `checkout` at `res`, in a fresh process running this script."""
    proc = subprocess.run([sys.executable, __file__, *argv, "--worker", str(res)], capture_output=True,
                          text=True, env=child_env(checkout), cwd=checkout, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"step benchmark of {checkout} at {res}² failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_TICK = re.compile(r"tick (\d+)\s+kimg ([\d.]+)\s+lod ([\d.]+)\s+minibatch (\d+).*?sec/tick ([\d.]+)\s+"
                   r"sec/kimg ([\d.]+)")


def loop_in(checkout: Path, res: int, data: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """A short `train.py` run of `checkout` at a fixed lod: img/s of the ticks after the first. The demo
    schedule has no tick-size dict, so `tick_kimg_base` sets the ticks (its learning rates cost the same)."""
    tick_kimg = args.tick_images / res / 1000
    overrides = [
        *model_overrides(args), *schedule_overrides(res, args), "dataset=folder", f"dataset.path={data}",
        f"dataset.resolution={res}", "schedule=demo", f"schedule.tick_kimg_base={tick_kimg}",
        "schedule.max_minutes=null",
        f"schedule.total_kimg={tick_kimg * (args.loop_ticks + 1)}", "schedule.image_snapshot_ticks=100000",
        "schedule.network_snapshot_ticks=100000", "metrics=none", "logger=none",
        "run.checkpoint_kimg=1e9", "run.checkpoint_minutes=1e9", "name=bench", f"outputs_root={workdir}",
        f"seed={args.seed}",
    ]
    proc = subprocess.run([sys.executable, str(checkout / "train.py"), *overrides], capture_output=True,
                          text=True, env=child_env(checkout), cwd=workdir, timeout=3600)
    if proc.returncode:
        raise RuntimeError(f"train.py of {checkout} at {res}² failed:\n{proc.stderr[-3000:]}")
    ticks = [m.groups() for m in _TICK.finditer(proc.stdout + proc.stderr)]
    if len(ticks) < 2:
        raise RuntimeError(f"train.py of {checkout} at {res}² logged {len(ticks)} tick(s):\n"
                           f"{proc.stdout[-3000:]}")
    if any(float(lod) != 0.0 for _, _, lod, _, _, _ in ticks):
        raise RuntimeError(f"train.py of {checkout} at {res}² did not train at a fixed lod")
    sec_per_kimg = [float(sec_kimg) for _, _, _, _, _, sec_kimg in ticks[1:]]
    return {"resolution": res, "batch": int(ticks[0][3]), "tick_kimg": tick_kimg,
            "ticks_sec_per_kimg": sec_per_kimg, "img_per_sec": 1000.0 / statistics.mean(sec_per_kimg)}


def loop_dataset(args: argparse.Namespace, workdir: Path) -> Path:
    """The loop runs' data: --dataset, or synthetic faces at the largest resolution (data costs < 1%)."""
    if args.dataset is not None:
        return args.dataset
    from stylegan_exp.data.synthetic import ensure_synthetic_dataset

    return ensure_synthetic_dataset(workdir / "data", count=256, resolution=max(args.resolutions), seed=0)


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


def format_table(rows: list[dict[str, Any]], sides: list[str]) -> str:
    """One line per resolution and measurement: img/s per checkout (best run), the ratio, and for the steps
    GFLOP per image and achieved GFLOP/s (% of the matmul peak)."""
    head = ("resolution", "batch", "measured", *(f"{side} img/s" for side in sides))
    if len(sides) == 2:
        head += (f"{sides[0]} / {sides[1]}",)
    head += ("GFLOP/img", "GFLOP/s (% of peak)")
    body = []
    for r in rows:
        got = [r["sides"].get(side) for side in sides]
        cells = [f"{r['resolution']}²", str(r["batch"]), r["kind"]]
        cells += [f"{g['img_per_sec']:.1f}" if g else "-" for g in got]
        if len(sides) == 2:
            cells.append(f"{got[0]['img_per_sec'] / got[1]['img_per_sec']:.2f}×" if all(got) else "-")
        if r["kind"] == "steps":
            cells.append(" / ".join(f"{g['gflop_per_img']:.2f}" for g in got if g))
            cells.append(" / ".join(f"{g['gflop_per_sec']:.0f} ({g['pct_of_matmul_peak']:.0f}%)"
                                    for g in got if g))
        else:
            cells += ["", ""]
        body.append(tuple(cells))
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


def flop_notes(runs: list[dict[str, Any]]) -> list[str]:
    """Say plainly when GFLOP/img is a lower bound, and why."""
    uncounted: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    entered: Counter[str] = Counter()
    worst = 0.0
    for r in runs:
        counted = sum(f["total"] for f in r["flops"].values())
        worst = max(worst, sum(f["uncounted_rough"] for f in r["flops"].values()) / counted)
        for f in r["flops"].values():
            uncounted.update(f["uncounted_types"])
            unknown.update(f["unknown_shape_ops"])
            calls.update(f["calls_not_entered"])
            entered.update(f["calls_entered"])
    notes = []
    if uncounted:
        notes.append("GFLOP/img is a lower bound: no registered FLOP stats for "
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


def worker_argv(args: argparse.Namespace) -> list[str]:
    """The options a step-benchmark process needs, passed on."""
    argv = ["--model", args.model, "--warmup", str(args.warmup), "--iters", str(args.iters),
            "--precision", args.precision, "--seed", str(args.seed), "--intra-op-threads",
            str(args.intra_op_threads), "--inter-op-threads", str(args.inter_op_threads)]
    optional = (("--fmap-base", args.fmap_base), ("--fmap-max", args.fmap_max), ("--batch", args.batch))
    for flag, value in optional:
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--xla"] if args.xla else [])


def best_rows(runs: list[dict[str, Any]], resolutions: list[int]) -> list[dict[str, Any]]:
    """Per resolution and measurement, each checkout's best run (other processes only slow runs down)."""
    rows = []
    for res in resolutions:
        for kind in ("loop", "steps"):
            mine = [r for r in runs if r["resolution"] == res and r["kind"] == kind]
            if not mine:
                continue
            best = {}
            for r in mine:
                if r["side"] not in best or r["img_per_sec"] > best[r["side"]]["img_per_sec"]:
                    best[r["side"]] = r
            rows.append({"resolution": res, "kind": kind, "batch": mine[0]["batch"], "sides": best})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker is not None:
        run_worker(args)
        return {}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sides = {"this": REPO}
    if args.baseline is not None:
        sides["baseline"] = args.baseline.resolve()
    log.info("model %s, %s, resolutions %s: %s; %d round(s), alternating", args.model, args.precision,
             " ".join(f"{r}²" for r in args.resolutions),
             " and ".join(f"{k} ({v})" for k, v in sides.items()), args.rounds)
    load_start = os.getloadavg()[0]
    peak = matmul_peak(args.matmul_size, args.matmul_reps)
    log.info("matmul peak %d×%d float32: %.1f GFLOP/s", args.matmul_size, args.matmul_size, peak)
    runs: list[dict[str, Any]] = []
    loads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="train_speed-") as tmp:
        workdir = Path(tmp)
        data = loop_dataset(args, workdir) if args.loop else None
        for rnd in range(args.rounds):
            for res in args.resolutions:
                order = list(sides.items())
                for side, checkout in order if rnd % 2 == 0 else order[::-1]:  # neither side always first
                    kinds = (["steps"] if args.steps else []) + (["loop"] if args.loop else [])
                    for kind in kinds:
                        load = os.getloadavg()[0]
                        r = (steps_in(checkout, res, worker_argv(args)) if kind == "steps"
                             else loop_in(checkout, res, data, args, workdir))
                        r.update(side=side, kind=kind, round=rnd, loadavg=load)
                        loads.append(load)
                        runs.append(r)
                        log.info("round %d %4d² %-8s %-5s %.1f img/s (load %.1f)", rnd + 1, res, side, kind,
                                 r["img_per_sec"], load)
    peak = max(peak, matmul_peak(args.matmul_size, args.matmul_reps))  # contention only lowers a peak
    for r in runs:
        if r["kind"] == "steps":
            r["pct_of_matmul_peak"] = 100 * r["gflop_per_sec"] / peak
    rows = best_rows(runs, args.resolutions)
    names = list(sides)
    notes = flop_notes([r for r in runs if r["kind"] == "steps"])
    loads.append(os.getloadavg()[0])
    busy = ": other processes competed for the CPU; the best of the alternating runs counts"
    notes.append(f"1-min load average {min(loads):.1f}–{max(loads):.1f} during the runs ({load_start:.1f} at "
                 f"the start) on {os.cpu_count()} CPUs{busy if max(loads) > 1 else ''}.")
    print()
    print(format_table(rows, names))
    print(f"\nmatmul peak ({args.matmul_size}² float32, best of 3×{args.matmul_reps}, before and after): "
          f"{peak:.1f} GFLOP/s")
    for note in notes:
        print("note:", note)
    result = {
        "machine": {**machine_info(), "loadavg_at_start": load_start,
                    "loadavg_range": [min(loads), max(loads)]},
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "checkouts": {k: str(v) for k, v in sides.items()},
                     "model": asdict(load_model(args.model, *model_overrides(args)[1:]))},
        "matmul_peak_gflops": peak, "best": rows, "runs": runs, "notes": notes,
    }
    write_results(args.out, result)
    return result


if __name__ == "__main__":
    main()
