"""tf.distribute: a step split over 2 replicas (2 logical CPUs; 2 worker processes on loopback) equals the
single-device step; mixed precision keeps float32 weights and scales the loss.

Device setup must precede TensorFlow's start, so the distributed runs happen in subprocesses that run
this file as a script (`python tests/test_distribute.py mirrored|worker`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY

from stylegan_exp.config import AugmentConfig, AugmentKind, ConfigError
from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.steps.adam import LossScale
from stylegan_exp.steps.replicas import part, worker_rows
from stylegan_exp.train.builder import check_replicas
from stylegan_exp.train.distribute import (
    ClusterError,
    WorkerGroup,
    _worker_position,
    make_strategy,
    network_scope,
    slurm_addresses,
    slurm_cluster,
    tasks_per_node,
)

# Tiny nets; no noise and no style mixing, whose random draws differ per replica by design.
MODEL = StyleGANConfig(
    name="tiny", fmap_base=64, fmap_decay=1.0, fmap_max=16, latent_size=16, dlatent_size=16,
    mapping_layers=2, mapping_fmaps=16, mapping_lrmul=0.01, use_noise=False,
    fused_scale_min_res=128, mbstd_group_size=4, mbstd_num_features=1, style_mixing_prob=0.0,
)
BATCH = 8  # mbstd groups of 4 divide the per-replica batch
# Augmentations whose split steps must equal the whole step: ADA starts at p = 0.5 and adjusts p after every
# D step by 8 / 100 (so the G step already runs at the adjusted p).
AUGMENT = {"ada": AugmentConfig(name="ada", kind=AugmentKind.ada, p=0.5, interval=1, ada_kimg=0.1),
           "diffaugment": AugmentConfig(name="diffaugment", kind=AugmentKind.diffaugment)}


def build_steps(strategy: tf.distribute.Strategy, accumulate: int = 1, precision: str = "float32",
                worker: tuple[int, int] = (0, 1), augment: str | None = None) -> StyleGANSteps:
    with network_scope(strategy):
        G, D, Gs = build_generator(MODEL, 8), build_discriminator(MODEL, 8), build_generator(MODEL, 8)
    model = dataclasses.replace(MODEL, precision=precision)
    steps = StyleGANSteps(G, D, Gs, model, seed=7, accumulate=accumulate, strategy=strategy, worker=worker,
                  augment=AUGMENT[augment] if augment else None)
    # Adam's first step is lr·sign(g) for |g| ≫ ε: a large ε makes it linear in g, so the comparison
    # measures gradients instead of sign flips of gradients that are zero up to rounding.
    steps.G_opt.epsilon = steps.D_opt.epsilon = 1.0
    return steps


def compare(strategy: tf.distribute.Strategy, accumulate: int = 1, batch: int = BATCH,
            augment: str | None = None) -> dict[str, float]:
    """Max abs differences between one D+G step split by `strategy`/`accumulate` and on one device; each
    worker process gets only its share of the reals. `augment` names an AUGMENT setting."""
    tf.random.set_seed(1)  # every worker process must start from the same weights
    ref = build_steps(tf.distribute.get_strategy(), augment=augment)
    workers = WorkerGroup(strategy)
    split = build_steps(strategy, accumulate, worker=(workers.index, workers.count), augment=augment)
    for a, b in zip(ref.G.variables + ref.D.variables, split.G.variables + split.D.variables, strict=True):
        b.assign(a)
    reals = tf.random.stateless_uniform([batch, 8, 8, 3], [1, 2], -1.0, 1.0)
    fade = tf.constant(0.3)
    outs = []
    for steps in (ref, split):
        out = steps.d_step(steps.share(reals), 3, fade)
        out.update(steps.g_step(tf.constant(batch), 3, fade))
        outs.append(out)
    diffs = {k: abs(float(outs[0][k]) - float(outs[1][k])) for k in outs[0]}
    for name in ("G", "D"):
        a_vars, b_vars = getattr(ref, name).trainable_variables, getattr(split, name).trainable_variables
        diffs[name] = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(a_vars, b_vars, strict=True))
    diffs["w_avg"] = float(tf.reduce_max(tf.abs(ref.G.w_avg - split.G.w_avg)))
    diffs.update({f"{k}/ref": v for k, v in ref.log_state().items()})
    diffs.update({f"{k}/split": v for k, v in split.log_state().items()})
    diffs["replicas"] = strategy.num_replicas_in_sync
    diffs["share"] = int(split.share(reals).shape[0])
    diffs["refusals"] = _refusals(workers)
    return diffs


def _run_script(mode: str, env: dict[str, str] | None = None, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen([sys.executable, __file__, mode, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def _result(proc: subprocess.Popen) -> dict[str, float]:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _refusals(workers: WorkerGroup) -> list[str]:
    """check_replicas' one-line errors for settings that do not fit these replicas and workers."""
    found = []
    for num_gpus, max_restarts in ((3, 0), (2, 1)):
        cfg = SimpleNamespace(gpus=SimpleNamespace(name="test", num_gpus=num_gpus, strategy="test"),
                              run=SimpleNamespace(max_restarts=max_restarts))
        try:
            check_replicas(cfg, workers)
        except ConfigError as exc:
            found.append(str(exc))
    return found


def _assert_equal_steps(diffs: dict[str, float], share: int = BATCH) -> None:
    assert diffs["replicas"] == 2 and diffs["share"] == share
    assert all(diffs[k] < 1e-5 for k in ("loss/D", "loss/R1", "score/real", "score/fake", "loss/G")), diffs
    assert diffs["D"] < 1e-6 and diffs["G"] < 1e-6, diffs


def assert_same_p(diffs: dict[str, float], augment: str) -> None:
    """ADA's p is adjusted by the D step, identically in the split and the whole step, and used by G's."""
    if augment == "ada":
        assert diffs["augment/p/ref"] == pytest.approx(diffs["augment/p/split"], abs=1e-7)
        assert diffs["augment/p/ref"] != pytest.approx(AUGMENT["ada"].p)


@pytest.mark.slow
def test_two_logical_devices_equal_one_device():
    """With ADA on: its draws are made for the global batch and split like the latents."""
    diffs = _result(_run_script("mirrored", {"TEST_AUGMENT": "ada"}))
    _assert_equal_steps(diffs)
    assert_same_p(diffs, "ada")
    assert diffs["w_avg"] < 1e-6  # sync-on-read mean of the replicas' moving averages
    (refusal,) = diffs["refusals"]  # one worker may restart
    assert "gpus.num_gpus=3 is not a multiple of the 2 replicas" in refusal and "gpus.num_gpus=2" in refusal


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _free_port_pair() -> int:
    """A port p with p + 1 free too, as a Slurm node's two tasks listen on port_base and port_base + 1."""
    while True:
        port = _free_port()
        with socket.socket() as s:
            if s.connect_ex(("localhost", port + 1)) != 0:
                return port


def _tf_configs(workers: int = 2) -> list[str]:
    """TF_CONFIG for each of `workers` processes on free loopback ports."""
    cluster = {"worker": [f"localhost:{_free_port()}" for _ in range(workers)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def _fake_scontrol(directory: Path, hosts: str) -> str:
    """A PATH on which `scontrol show hostnames` prints `hosts`, as on a Slurm node."""
    script = directory / "scontrol"
    script.write_text(f"#!/bin/sh\nprintf '{hosts}\\n'\n")
    script.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def _slurm_env(path: str, rank: int, tasks: int = 2) -> dict[str, str]:
    return {"PATH": path, "SLURM_JOB_ID": "42", "SLURM_PROCID": str(rank), "SLURM_STEP_NUM_TASKS": str(tasks),
            "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_TASKS_PER_NODE": str(tasks),
            "SLURMD_NODENAME": "localhost"}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["tf_config", "slurm"])
def test_two_workers_on_loopback_equal_one_device(launcher, tmp_path):
    """Two worker processes, placed by TF_CONFIG or by a Slurm job step's variables (one node, 2 tasks). Under
    TF_CONFIG with ADA on: each worker draws the global batch's augmentation and keeps its rows."""
    if launcher == "tf_config":
        env = [{"TF_CONFIG": config, "TEST_AUGMENT": "ada"} for config in _tf_configs()]
        procs = [_run_script("worker", e) for e in env]
    else:
        path, port = _fake_scontrol(tmp_path, "localhost"), _free_port_pair()
        procs = [_run_script("worker", _slurm_env(path, rank), str(port)) for rank in range(2)]
    results = [_result(p) for p in procs]
    for diffs in results:  # each worker decodes half of the batch, as 2 micro-batches of 4
        _assert_equal_steps(diffs, share=BATCH)
        assert_same_p(diffs, "ada" if launcher == "tf_config" else "none")
        assert diffs["refusals"] == [
            "gpus.num_gpus=3 is not a multiple of the 2 replicas the test strategy found (2 worker(s)); "
            "set gpus.num_gpus=2",
            "run.max_restarts=1 needs a single worker: one worker cannot re-enter the loop while "
            "1 other(s) wait in a collective; set run.max_restarts=0 and resubmit with resume=latest"]


@pytest.mark.slow
def test_train_py_runs_mirrored_accumulated_bfloat16(tmp_path):
    """The loop on mirrored variables (checkpoints, fakes, Gs) with accumulation and mixed precision."""
    out = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}", "logger=none",
         f"dataset.path={tmp_path / 'synthetic-16'}", "schedule.total_kimg=0.1",
         "schedule.tick_kimg_base=0.05", "gpus.strategy=mirrored", "schedule.accumulate=2",
         "model.precision=mixed_bfloat16"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (out / "tiny").iterdir()
    ticks = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert ticks and all(math.isfinite(t["loss/D"]) for t in ticks if "loss/D" in t)
    assert list(run_dir.glob("fakes*.png")) and list(run_dir.glob("network-snapshot-*"))


def _train_two_workers(tmp_path: Path, *overrides: str) -> list[subprocess.Popen]:
    out = tmp_path / "outputs"
    args = [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}", "logger=none",
            f"dataset.path={tmp_path / 'synthetic-16'}", "gpus=multinode", "gpus.num_gpus=2", *overrides]
    return [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "TF_CONFIG": config, "TF_CPP_MIN_LOG_LEVEL": "2"})
            for config in _tf_configs()]


def _outputs_of(run_dir: Path) -> set[str]:
    return {p.name for p in run_dir.iterdir() if p.name not in (".hydra", "train.log")}


@pytest.mark.slow
def test_train_py_on_two_workers_stops_together_and_resumes(tmp_path):
    """train.py on 2 worker processes: one run dir written by the chief alone; SIGTERM to the other worker
    stops both at the same step with a checkpoint; resume=latest continues it on both."""
    from test_resume import ticks_of

    runs = tmp_path / "outputs" / "tiny"
    procs = _train_two_workers(tmp_path, "schedule.total_kimg=50")
    deadline = time.time() + 300
    while not list(runs.glob("*/fakes000001.png")):
        assert time.time() < deadline and all(p.poll() is None for p in procs), procs[0].stdout.read()[-3000:]
        time.sleep(0.5)
    procs[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, "\n".join(o[-3000:] for o in outputs)
    assert "stopped by SIGTERM" in outputs[0] and "worker 2 of 2" in outputs[1]
    written = [d for d in runs.iterdir() if _outputs_of(d)]
    assert len(written) == 1, [sorted(_outputs_of(d)) for d in runs.iterdir()]
    (first,) = written
    assert {"config.yaml", "reals.png", "metrics.jsonl", "checkpoints"} <= _outputs_of(first)
    stopped_kimg = ticks_of(first)[-1]["kimg"]
    numbers = [int(p.stem.split("-")[1]) for p in (first / "checkpoints").glob("ckpt-*.index")]
    assert max(numbers) == round(stopped_kimg * 1000)

    procs = _train_two_workers(tmp_path, "resume=latest", f"schedule.total_kimg={stopped_kimg + 0.3}")
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    (second,) = [d for d in runs.iterdir() if d != first and _outputs_of(d)]
    resumed = ticks_of(second)
    assert resumed[0]["tick"] == ticks_of(first)[-1]["tick"] and resumed[0]["kimg"] > stopped_kimg  # the stopped tick, continued
    assert resumed[-1]["kimg"] >= stopped_kimg + 0.3
    assert all(math.isfinite(t["loss/D"]) and math.isfinite(t["loss/G"]) for t in resumed)
    assert list(second.glob("network-snapshot-*.npz")) and list(second.glob("fakes*.png"))


@pytest.mark.parametrize("workers,local_replicas,accumulate", [(2, 1, 1), (2, 2, 1), (3, 2, 2), (2, 4, 3)])
def test_worker_shares_hold_each_replicas_part_of_the_global_batch(workers, local_replicas, accumulate):
    """Micro-batch k of local replica l, cut from worker w's share, is the global part that replica
    w·L + l trains on in the whole-batch split, in the same order."""
    replicas, parts = workers * local_replicas, workers * local_replicas * accumulate
    batch = parts * 3
    global_rows = np.arange(batch)
    for w in range(workers):
        share = worker_rows(np.arange(batch // workers), workers=workers, index=w,
                            local_replicas=local_replicas, accumulate=accumulate)
        for k in range(accumulate):
            for r in range(local_replicas):
                np.testing.assert_array_equal(
                    part(share, k * local_replicas + r, local_replicas * accumulate),
                    part(global_rows, k * replicas + w * local_replicas + r, parts))


def test_slurm_layout_follows_the_ranks_placement(tmp_path, monkeypatch):
    assert tasks_per_node("2(x3),1") == [2, 2, 2, 1] and tasks_per_node("4") == [4]
    with pytest.raises(ValueError, match="SLURM_STEP_TASKS_PER_NODE"):
        tasks_per_node("2(3)")
    assert slurm_addresses(["gpu-b", "gpu-a"], [2, 1], 9000) == ["gpu-b:9000", "gpu-b:9001", "gpu-a:9000"]
    monkeypatch.setenv("PATH", _fake_scontrol(tmp_path, "gpu-b\\ngpu-a"))
    env = {**_slurm_env("", rank=2, tasks=3), "SLURM_STEP_TASKS_PER_NODE": "2,1", "SLURMD_NODENAME": "gpu-a"}
    resolver = slurm_cluster(env, 9000)
    assert resolver.cluster_spec().as_dict() == {"worker": ["gpu-b:9000", "gpu-b:9001", "gpu-a:9000"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 2)
    assert resolver.num_accelerators() == {"GPU": 0}  # this machine's GPUs, not nvidia-smi's
    with pytest.raises(ClusterError, match="task 1 runs on gpu-a, not gpu-b:9001.*block"):
        slurm_cluster({**env, "SLURM_PROCID": "1"}, 9000)
    with pytest.raises(ClusterError, match="SLURM_STEP_NUM_TASKS=4 but the nodes list 3"):
        slurm_cluster({**env, "SLURM_STEP_NUM_TASKS": "4"}, 9000)
    with pytest.raises(ClusterError, match="SLURM_STEP_NODELIST"):
        slurm_cluster({k: v for k, v in env.items() if k != "SLURM_STEP_NODELIST"}, 9000)


def test_fewer_replicas_than_gpus_is_logged(caplog):
    cfg = SimpleNamespace(gpus=SimpleNamespace(name="2gpu", num_gpus=2, strategy="mirrored"),
                          run=SimpleNamespace(max_restarts=0))
    check_replicas(cfg, WorkerGroup(tf.distribute.get_strategy()))
    assert "gpus=2gpu is for 2 GPUs but the mirrored strategy found 1 replica(s)" in caplog.text


def test_worker_position_puts_the_chief_first():
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver
    spec = tf.train.ClusterSpec({"chief": ["a:1"], "worker": ["b:1", "c:1"]})
    assert _worker_position(resolver(spec, task_type="chief", task_id=0)) == (0, 3)
    assert _worker_position(resolver(spec, task_type="worker", task_id=1)) == (2, 3)
    workers_only = tf.train.ClusterSpec({"worker": ["b:1", "c:1"]})
    assert _worker_position(resolver(workers_only, task_type="worker", task_id=0)) == (0, 2)
    assert _worker_position(resolver(tf.train.ClusterSpec({}))) == (0, 1)
    assert _worker_position(None) == (0, 1)


def test_loss_scale_skips_overflow_and_grows():
    scale = LossScale(True, initial=8.0, growth_interval=2)
    grads, finite = scale.unscale([tf.constant([16.0]), None, tf.constant([float("inf")])])
    assert not bool(finite) and float(grads[0][0]) == 2.0 and grads[1] is None
    scale.update(finite)
    assert float(scale.scale) == 4.0
    for _ in range(2):
        scale.update(tf.constant(True))
    assert float(scale.scale) == 8.0 and int(scale.good_steps) == 0


def test_bfloat16_step_keeps_float32_weights():
    steps = build_steps(tf.distribute.get_strategy(), precision="mixed_bfloat16")
    before = [v.numpy() for v in steps.D.trainable_variables]
    reals = tf.random.stateless_uniform([8, 8, 8, 3], [1, 2], -1.0, 1.0)
    out = steps.d_step(reals, 3, tf.constant(0.0))
    assert all(bool(tf.math.is_finite(v)) for v in out.values())
    assert all(v.dtype == tf.float32 for v in steps.D.trainable_variables + steps.G.trainable_variables)
    assert any((b != v.numpy()).any() for b, v in zip(before, steps.D.trainable_variables, strict=True))


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="gpus.strategy"):
        make_strategy("parameter_server")


if __name__ == "__main__":
    augment = os.environ.get("TEST_AUGMENT")  # an AUGMENT key
    if sys.argv[1] == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        result = compare(make_strategy("mirrored", ["/cpu:0", "/cpu:1"]), augment=augment)
    else:
        port_base = int(sys.argv[2]) if len(sys.argv) > 2 else 8888
        result = compare(make_strategy("multiworker", port_base=port_base), accumulate=2, batch=2 * BATCH,
                         augment=augment)
    print(json.dumps(result))
