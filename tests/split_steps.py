"""Split steps against the whole step: one training step of the tiny networks split over replicas, worker
processes or micro-batches, and the same step on one device, for StyleGAN (D + G) and StyleGAN2 (G, path
length, D, R1); `compare` returns the largest differences of every statistic and weight.

Device set-up must precede TensorFlow's start, so the runs on 2 logical devices and on 2 loopback workers
run this file as a script in fresh processes (see `run_script`):

    python tests/split_steps.py mirrored            → {"stylegan": diffs, "stylegan2": diffs} on stdout
    python tests/split_steps.py worker [PORT_BASE]  → StyleGAN's diffs for this worker (TF_CONFIG or Slurm)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, tiny_model

from stylegan_exp.config import AugmentConfig, AugmentKind, ConfigError
from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.models.stylegan2.training import StyleGAN2Steps
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.steps.base import TrainingSteps
from stylegan_exp.train.builder import check_replicas
from stylegan_exp.train.distribute import WorkerGroup, make_strategy, network_scope

# No noise and no style mixing, whose random draws differ per replica by design.
MODELS = {arch: tiny_model(arch, use_noise=False, style_mixing_prob=0.0)
          for arch in ("stylegan", "stylegan2")}
RES, BATCH = 8, 8  # mbstd groups of 4 divide the per-replica batch
# Augmentations whose split steps must equal the whole step: ADA starts at p = 0.5 and adjusts p after every
# D step by 8 / 100 (so the G step already runs at the adjusted p).
AUGMENT = {"ada": AugmentConfig(name="ada", kind=AugmentKind.ada, p=0.5, interval=1, ada_kimg=0.1),
           "diffaugment": AugmentConfig(name="diffaugment", kind=AugmentKind.diffaugment)}
# The statistics each architecture's step reports.
STATS = {"stylegan": ("loss/D", "loss/R1", "score/real", "score/fake", "loss/G"),
         "stylegan2": ("loss/G", "loss/pl", "pl/length", "pl/mean", "loss/D", "score/real", "score/fake",
                       "loss/R1")}


def build_steps(strategy: tf.distribute.Strategy | None = None, accumulate: int = 1,
                precision: str = "float32", worker: tuple[int, int] = (0, 1), augment: str | None = None,
                arch: str = "stylegan", res: int = RES, model=None) -> TrainingSteps:
    """The tiny networks' training steps (`augment` names an AUGMENT setting), with the original's Adam."""
    strategy = strategy or tf.distribute.get_strategy()
    model = dataclasses.replace(model or MODELS[arch], precision=precision)
    with network_scope(strategy):
        G, D, Gs = build_generator(model, res), build_discriminator(model, res), build_generator(model, res)
    _away_from_init(G)
    steps_class = {"stylegan": StyleGANSteps, "stylegan2": StyleGAN2Steps}[model.ARCH]
    steps = steps_class(G, D, Gs, model, seed=7, accumulate=accumulate, strategy=strategy, worker=worker,
                        augment=AUGMENT[augment] if augment else None)
    return steps


def _away_from_init(G) -> None:
    """Noise strengths and the constant input as training leaves them: at their initial zeros and ones the
    first layer's maps are flat and positive, so its bias has no gradient but rounding noise (instance norm
    removes it)."""
    rng = np.random.RandomState(3)
    for name, var in variables_by_path(G).items():
        if name.endswith("noise/weight"):
            var.assign(rng.uniform(0.2, 1.0, var.shape).astype(np.float32))
        elif name.endswith("/const"):
            var.assign(rng.standard_normal(var.shape).astype(np.float32))


# Which optimizer each op of a step moves.
OP_NETS = {"d_step": "D", "g_step": "G", "g_reg_step": "G", "d_reg_step": "D"}


def _step(steps: StyleGANSteps, arch: str, reals: tf.Tensor) -> tuple[dict[str, tf.Tensor], dict]:
    """One whole training step: StyleGAN's D then G step at fade 0.3; StyleGAN2's G, path-length, D and R1
    steps (pl_mean 0.2 already tracked). Returns its statistics and each op's gradients: Adam's first moments
    right after the op (β1 = 0, so m is the op's gradient)."""
    share = steps.share(reals)
    batch = tf.constant(int(reals.shape[0]))
    if arch == "stylegan":
        ops = [("d_step", (share, 3, tf.constant(0.3))), ("g_step", (batch, 3, tf.constant(0.3)))]
    else:
        steps.pl_mean.assign(0.2)
        ops = [("g_step", (batch, 3, tf.constant(0.0))), ("g_reg_step", (batch // 2, 3)),
               ("d_step", (share, 3, tf.constant(0.0))), ("d_reg_step", (share, 3))]
    out, grads = {}, {}
    for op, args in ops:
        out.update(getattr(steps, op)(*args))
        optimizer = getattr(steps, f"{OP_NETS[op]}_opt")
        assert optimizer.beta1 == 0.0
        grads[op] = [m.numpy() for m in optimizer.m]
    return out, grads


def _relative_error(ref: list[np.ndarray], split: list[np.ndarray]) -> float:
    """The largest ‖split − ref‖ / ‖ref‖ over the variables (a variable without gradient on both sides: 0)."""
    worst = 0.0
    for a, b in zip(ref, split, strict=True):
        norm = float(np.linalg.norm(a))
        error = float(np.linalg.norm(b - a))
        worst = max(worst, error / norm if norm else (0.0 if error == 0 else math.inf))
    return worst


def _weight_error(ref: list[tf.Variable], split: list[tf.Variable], grads: list[np.ndarray]) -> float:
    """The largest |split − ref| over the weights whose gradient stands above float32's rounding of the
    variable's largest one: there Adam's update is a continuous function of the gradient; below, its first
    step is ±lr on either side by the sign of a rounding error."""
    worst = 0.0
    for a, b, g in zip(ref, split, grads, strict=True):
        moved = np.abs(g) > 1e-5 * np.abs(g).max(initial=0.0)
        if moved.any():
            worst = max(worst, float(np.abs(a.numpy() - b.numpy())[moved].max()))
    return worst


def compare(strategy: tf.distribute.Strategy | None = None, accumulate: int = 1, batch: int = BATCH,
            augment: str | None = None, arch: str = "stylegan") -> dict[str, float]:
    """Max abs differences between one step split by `strategy`/`accumulate` and on one device; each worker
    process gets only its share of the reals."""
    strategy = strategy or tf.distribute.get_strategy()
    tf.random.set_seed(1)  # every worker process must start from the same weights
    ref = build_steps(augment=augment, arch=arch)
    workers = WorkerGroup(strategy)
    split = build_steps(strategy, accumulate, worker=(workers.index, workers.count), augment=augment,
                        arch=arch)
    for a, b in zip(ref.G.variables + ref.D.variables, split.G.variables + split.D.variables, strict=True):
        b.assign(a)
    reals = tf.random.stateless_uniform([batch, RES, RES, 3], [1, 2], -1.0, 1.0)
    (outs, ref_grads), (split_outs, split_grads) = (_step(steps, arch, reals) for steps in (ref, split))
    diffs = {k: abs(float(outs[k]) - float(split_outs[k])) for k in outs}
    diffs.update({f"grad/{op}": _relative_error(g, split_grads[op]) for op, g in ref_grads.items()})
    last = {net: [g for op, g in ref_grads.items() if OP_NETS[op] == net][-1] for net in ("G", "D")}
    for name in ("G", "D"):
        diffs[name] = _weight_error(getattr(ref, name).trainable_variables,
                                    getattr(split, name).trainable_variables, last[name])
    diffs["w_avg"] = float(tf.reduce_max(tf.abs(ref.G.w_avg - split.G.w_avg)))
    if arch == "stylegan2":
        diffs["pl_mean"] = abs(float(ref.pl_mean.numpy()) - float(split.pl_mean.numpy()))
    diffs.update({f"{k}/ref": v for k, v in ref.log_state().items()})
    diffs.update({f"{k}/split": v for k, v in split.log_state().items()})
    diffs["replicas"] = strategy.num_replicas_in_sync
    diffs["share"] = int(split.share(reals).shape[0])
    diffs["refusals"] = refusals(workers)
    return diffs


def refusals(workers: WorkerGroup) -> list[str]:
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


def assert_equal_steps(diffs: dict[str, float], arch: str = "stylegan", augment: str | None = None) -> None:
    """Every statistic within 1e-5 (ADA's r_t too), every op's gradients within 1e-4 of their norm (a 1 %
    error in any variable's gradient fails), G and D within 1 % of Adam's update (lr ≥ 1e-3; StyleGAN2's
    pl_mean within 1e-7), and ADA's p adjusted alike by the split and the whole D step."""
    stats = STATS[arch] + (("augment/rt",) if augment else ())
    assert all(diffs[k] < 1e-5 for k in stats), diffs
    grads = [k for k in diffs if k.startswith("grad/")]
    assert len(grads) == (2 if arch == "stylegan" else 4) and all(diffs[k] < 1e-4 for k in grads), diffs
    assert diffs["D"] < 1e-5 and diffs["G"] < 1e-5, diffs
    if arch == "stylegan2":
        assert diffs["pl_mean"] < 1e-7, diffs
    if augment == "ada":
        assert diffs["augment/p/ref"] == pytest.approx(diffs["augment/p/split"], abs=1e-7)
        assert diffs["augment/p/ref"] != pytest.approx(AUGMENT["ada"].p)


def run_script(mode: str, env: dict[str, str] | None = None, *args: str) -> subprocess.Popen:
    """This file as a script in a fresh process (see the module's docstring)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen([sys.executable, __file__, mode, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


if __name__ == "__main__":
    augment = os.environ.get("TEST_AUGMENT")  # an AUGMENT key
    if sys.argv[1] == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])
        # With ADA on for StyleGAN: its draws are made for the global batch and split like the latents.
        output = {"stylegan": compare(strategy, augment="ada"),
                  "stylegan2": compare(strategy, arch="stylegan2")}
    else:
        port_base = int(sys.argv[2]) if len(sys.argv) > 2 else 8888
        output = compare(make_strategy("multiworker", port_base=port_base), accumulate=2, batch=2 * BATCH,
                         augment=augment)
    print(json.dumps(output))
