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
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import tensorflow as tf
from conftest import REPO, tiny_model

from stylegan_exp.config import AugmentConfig, AugmentKind, ConfigError
from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.models.stylegan2.training import StyleGAN2Steps
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
    """The tiny networks' training steps (`augment` names an AUGMENT setting).

    Adam's first step is lr·sign(g) for |g| ≫ ε: a large ε makes it linear in g, so a comparison measures
    gradients instead of sign flips of gradients that are zero up to rounding."""
    strategy = strategy or tf.distribute.get_strategy()
    model = dataclasses.replace(model or MODELS[arch], precision=precision)
    with network_scope(strategy):
        G, D, Gs = build_generator(model, res), build_discriminator(model, res), build_generator(model, res)
    steps_class = {"stylegan": StyleGANSteps, "stylegan2": StyleGAN2Steps}[model.ARCH]
    steps = steps_class(G, D, Gs, model, seed=7, accumulate=accumulate, strategy=strategy, worker=worker,
                        augment=AUGMENT[augment] if augment else None)
    steps.G_opt.epsilon = steps.D_opt.epsilon = 1.0
    return steps


def _step(steps: StyleGANSteps, arch: str, reals: tf.Tensor) -> dict[str, tf.Tensor]:
    """One whole training step: StyleGAN's D then G step at fade 0.3; StyleGAN2's G, path-length, D and R1
    steps (pl_mean 0.2 already tracked)."""
    share = steps.share(reals)
    batch = tf.constant(int(reals.shape[0]))
    if arch == "stylegan":
        out = steps.d_step(share, 3, tf.constant(0.3))
        out.update(steps.g_step(batch, 3, tf.constant(0.3)))
        return out
    steps.pl_mean.assign(0.2)
    out = steps.g_step(batch, 3, tf.constant(0.0))
    out.update(steps.g_reg_step(batch // 2, 3))
    out.update(steps.d_step(share, 3, tf.constant(0.0)))
    out.update(steps.d_reg_step(share, 3))
    return out


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
    outs = [_step(steps, arch, reals) for steps in (ref, split)]
    diffs = {k: abs(float(outs[0][k]) - float(outs[1][k])) for k in outs[0]}
    for name in ("G", "D"):
        pairs = zip(getattr(ref, name).trainable_variables, getattr(split, name).trainable_variables,
                    strict=True)
        diffs[name] = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in pairs)
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
    """Every statistic within 1e-5 (ADA's r_t too), G and D within 1e-6 (StyleGAN2's pl_mean within 1e-7),
    and ADA's p adjusted alike by the split and the whole D step."""
    stats = STATS[arch] + (("augment/rt",) if augment else ())
    assert all(diffs[k] < 1e-5 for k in stats), diffs
    assert diffs["D"] < 1e-6 and diffs["G"] < 1e-6, diffs
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
