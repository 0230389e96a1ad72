"""tf.distribute: a step split over 2 replicas (2 logical CPUs; 2 worker processes on loopback) equals the
single-device step, for each architecture; train.py on mirrored variables and on 2 workers (stopped by SIGTERM
and resumed); mixed precision keeps float32 weights and scales the loss.

Device setup must precede TensorFlow's start, so the distributed steps run in subprocesses that run
split_steps.py as a script.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY, checkpoint_numbers, free_port_pair, tf_configs, ticks_of, worker_env
from split_steps import BATCH, assert_equal_steps, build_steps, result, run_script

from stylegan_exp.models import load_snapshot
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.steps.adam import LossScale
from stylegan_exp.steps.replicas import part, worker_rows
from stylegan_exp.train.builder import check_replicas
from stylegan_exp.train.distribute import (
    ClusterError,
    WorkerGroup,
    _worker_position,
    make_strategy,
    slurm_addresses,
    slurm_cluster,
    tasks_per_node,
)


@pytest.fixture(scope="module")
def mirrored() -> dict[str, dict]:
    """Each architecture's step split over 2 logical CPUs against one device, in one fresh process."""
    return result(run_script("mirrored"))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_two_logical_devices_equal_one_device(mirrored, arch):
    """StyleGAN with ADA on: its draws are made for the global batch and split like the latents."""
    diffs = mirrored[arch]
    assert diffs["replicas"] == 2
    if arch == "stylegan2":
        assert_equal_steps(diffs, arch)
        return
    assert diffs["share"] == BATCH
    assert_equal_steps(diffs, arch, "ada")
    assert diffs["w_avg"] < 1e-6  # sync-on-read mean of the replicas' moving averages
    (refusal,) = diffs["refusals"]  # one worker may restart
    assert "gpus.num_gpus=3 is not a multiple of the 2 replicas" in refusal and "gpus.num_gpus=2" in refusal


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
def test_two_workers_on_loopback_equal_one_device(tmp_path):
    """Two worker processes placed by a Slurm job step's variables (one node, 2 tasks), with ADA on: each
    worker draws the global batch's augmentation and keeps its rows. (TF_CONFIG places the workers of the
    two-worker train.py runs: the session's StyleGAN2 run and the stop-and-resume test below.)"""
    path, port = _fake_scontrol(tmp_path, "localhost"), free_port_pair()
    procs = [run_script("worker", {**_slurm_env(path, rank), "TEST_AUGMENT": "ada"}, str(port))
             for rank in range(2)]
    results = [result(p) for p in procs]
    assert len(results) == 2
    for diffs in results:  # each worker decodes half of the batch, as 2 micro-batches of 4
        assert diffs["replicas"] == 2 and diffs["share"] == BATCH
        assert_equal_steps(diffs, "stylegan", "ada")
        assert diffs["refusals"] == [
            "gpus.num_gpus=3 is not a multiple of the 2 replicas the test strategy found (2 worker(s)); "
            "set gpus.num_gpus=2",
            "run.max_restarts=1 needs a single worker: one worker cannot re-enter the loop while "
            "1 other(s) wait in a collective; set run.max_restarts=0 and resubmit with resume=latest"]


@pytest.mark.slow
def test_train_py_runs_mirrored_accumulated_bfloat16(tiny_dataset, tmp_path):
    """The loop on mirrored variables (checkpoints, fakes, Gs) with accumulation and mixed precision."""
    out = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}", "logger=none",
         f"dataset.path={tiny_dataset}", "schedule.total_kimg=0.1",
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
    args = [sys.executable, str(REPO / "train.py"), *overrides, f"outputs_root={out}", "logger=none",
            "gpus=multinode", "gpus.num_gpus=2"]
    return [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=worker_env(config)) for config in tf_configs()]


def _outputs_of(run_dir: Path) -> set[str]:
    return {p.name for p in run_dir.iterdir() if p.name not in (".hydra", "train.log")}


@pytest.mark.slow
def test_train_py_on_two_workers_stops_together_and_resumes(tiny_dataset, tmp_path):
    """train.py on 2 worker processes: one run dir written by the chief alone; SIGTERM to the other worker
    after the first tick stops both at the same step with a checkpoint; resume=latest continues it on both.
    (StyleGAN2 on 2 workers: the session's stylegan2_run.) At 16² throughout: one trace of the steps."""
    runs = tmp_path / "outputs" / "tiny"
    common = (*TINY, f"dataset.path={tiny_dataset}", "schedule.lod_initial_resolution=16",
              "schedule.tick_kimg_base=0.1")
    procs = _train_two_workers(tmp_path, *common, "schedule.total_kimg=50")
    deadline = time.time() + 600
    while len(list(runs.glob("*/fakes*.png"))) < 2:  # the start's grid and the first tick's
        assert time.time() < deadline and all(p.poll() is None for p in procs), procs[0].stdout.read()[-3000:]
        time.sleep(0.2)
    procs[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, "\n".join(o[-3000:] for o in outputs)
    assert "stopped by SIGTERM" in outputs[0] and "worker 2 of 2" in outputs[1]
    written = [d for d in runs.iterdir() if _outputs_of(d)]
    assert len(written) == 1, [sorted(_outputs_of(d)) for d in runs.iterdir()]
    (first,) = written
    assert {"config.yaml", "reals.png", "metrics.jsonl", "checkpoints"} <= _outputs_of(first)
    stopped_kimg = ticks_of(first)[-1]["kimg"]
    assert checkpoint_numbers(first)[-1] == round(stopped_kimg * 1000)

    procs = _train_two_workers(tmp_path, *common, "resume=latest",
                               f"schedule.total_kimg={stopped_kimg + 0.1}")
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    (second,) = [d for d in runs.iterdir() if d != first and _outputs_of(d)]
    resumed = ticks_of(second)
    # the stopped tick is continued under its index
    assert resumed[0]["tick"] == ticks_of(first)[-1]["tick"] and resumed[0]["kimg"] > stopped_kimg
    assert resumed[-1]["kimg"] >= stopped_kimg + 0.1
    assert all(math.isfinite(t["loss/D"]) and math.isfinite(t["loss/G"]) for t in resumed)
    assert list(second.glob("network-snapshot-*.npz")) and list(second.glob("fakes*.png"))


def test_stylegan2_trains_on_two_workers(stylegan2_run):
    """The session's StyleGAN2 run (gpus=multinode on 2 loopback workers): both finished, the chief alone
    wrote the run, a StyleGAN2 snapshot."""
    written = [d for d in (stylegan2_run.outputs / "tiny").iterdir() if _outputs_of(d)]
    assert written == [stylegan2_run.run_dir]
    assert "worker 2 of 2" in stylegan2_run.stdout
    ticks = stylegan2_run.ticks
    assert ticks[-1]["kimg"] >= 0.3 and all(math.isfinite(t["loss/pl"]) for t in ticks)
    assert isinstance(load_snapshot(stylegan2_run.snapshots[-1]).model, StyleGAN2Config)


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
    steps = build_steps(precision="mixed_bfloat16")
    before = [v.numpy() for v in steps.D.trainable_variables]
    reals = tf.random.stateless_uniform([8, 8, 8, 3], [1, 2], -1.0, 1.0)
    out = steps.d_step(reals, 3, tf.constant(0.0))
    assert all(bool(tf.math.is_finite(v)) for v in out.values())
    assert all(v.dtype == tf.float32 for v in steps.D.trainable_variables + steps.G.trainable_variables)
    assert any((b != v.numpy()).any() for b, v in zip(before, steps.D.trainable_variables, strict=True))


def test_unknown_strategy_is_rejected():
    with pytest.raises(ValueError, match="gpus.strategy"):
        make_strategy("parameter_server")
