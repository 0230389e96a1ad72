"""A conditional training step split into micro-batches or over 2 replicas equals the whole step: the reals'
labels and the fakes' drawn labels travel with their rows (the split that serves workers too, steps.base).

    python tests/test_conditional_steps.py mirrored   → "equal on 2 replicas" (asserts on the way)
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, tiny_model
from split_steps import OP_NETS, _away_from_init, _relative_error, _weight_error

from stylegan_exp.models import build_discriminator, build_generator
from stylegan_exp.models.stylegan.training import StyleGANSteps
from stylegan_exp.models.stylegan2.training import StyleGAN2Steps
from stylegan_exp.train.distribute import make_strategy, network_scope

RES, BATCH, C_DIM = 8, 8, 5
LABELS = np.eye(C_DIM, dtype=np.float32)[np.random.RandomState(0).randint(C_DIM, size=40)]


def _steps(arch: str, accumulate: int, labels: np.ndarray = LABELS,
           strategy: tf.distribute.Strategy | None = None):
    model = tiny_model(arch, use_noise=False, style_mixing_prob=0.0)
    strategy = strategy or tf.distribute.get_strategy()
    with network_scope(strategy):
        G, D = build_generator(model, RES, 3, c_dim=C_DIM), build_discriminator(model, RES, 3, c_dim=C_DIM)
        Gs = build_generator(model, RES, 3, c_dim=C_DIM)
    _away_from_init(G)
    cls = StyleGANSteps if arch == "stylegan" else StyleGAN2Steps
    return cls(G, D, Gs, model, seed=7, accumulate=accumulate, labels=labels, strategy=strategy)


def _run(steps, arch: str, reals: tuple[tf.Tensor, tf.Tensor]) -> tuple[dict[str, float], dict]:
    """The step's statistics and each op's gradients (Adam's first moments right after it, β1 = 0)."""
    batch = tf.constant(BATCH)
    if arch == "stylegan":
        ops = [("d_step", (reals, 3, tf.constant(0.3))), ("g_step", (batch, 3, tf.constant(0.3)))]
    else:
        ops = [("g_step", (batch, 3, tf.constant(0.0))), ("g_reg_step", (batch // 2, 3)),
               ("d_step", (reals, 3, tf.constant(0.0))), ("d_reg_step", (reals, 3))]
    out, grads = {}, {}
    for op, args in ops:
        out.update({k: float(v) for k, v in getattr(steps, op)(*args).items()})
        grads[op] = [m.numpy() for m in getattr(steps, f"{OP_NETS[op]}_opt").m]
    return out, grads


def compare(arch: str, accumulate: int = 1, strategy: tf.distribute.Strategy | None = None) -> None:
    """One whole step against the same step split by `accumulate` and `strategy` (asserts)."""
    tf.random.set_seed(1)
    whole, split = _steps(arch, 1), _steps(arch, accumulate, strategy=strategy)
    pairs = zip(whole.G.variables + whole.D.variables, split.G.variables + split.D.variables, strict=True)
    for a, b in pairs:
        b.assign(a)
    x = tf.random.stateless_uniform([BATCH, RES, RES, 3], [1, 2], -1.0, 1.0)
    reals = (x, tf.constant(LABELS[:BATCH]))
    (ref, ref_grads), (got, got_grads) = _run(whole, arch, reals), _run(split, arch, reals)
    assert ref.keys() == got.keys() and all(abs(ref[k] - got[k]) < 1e-5 for k in ref), (ref, got)
    assert all(_relative_error(g, got_grads[op]) < 1e-4 for op, g in ref_grads.items())
    for net in ("G", "D"):
        last = [g for op, g in ref_grads.items() if OP_NETS[op] == net][-1]
        assert _weight_error(getattr(whole, net).trainable_variables,
                             getattr(split, net).trainable_variables, last) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_accumulated_conditional_step_equals_the_whole_step(arch):
    compare(arch, accumulate=2)


@pytest.mark.slow
def test_mirrored_conditional_step_equals_the_whole_step():
    """On 2 logical devices (MirroredStrategy), in a fresh process (devices are set before TF starts)."""
    proc = subprocess.run([sys.executable, __file__, "mirrored"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "equal on 2 replicas"


def test_fakes_labels_come_from_the_dataset():
    """With one label vector in the table, every fake row carries it (z rows, then labels)."""
    steps = _steps("stylegan", 1, labels=np.tile(np.eye(C_DIM, dtype=np.float32)[2], (3, 1)))
    rows = steps.latents(6).numpy()
    z, c = steps.split_latents(tf.constant(rows))
    assert z.shape == (6, steps.G.latent_size)
    assert np.array_equal(c.numpy(), np.tile(np.eye(C_DIM)[2], (6, 1)))
    with pytest.raises(ValueError, match="trains with the dataset's label vectors"):
        _steps("stylegan", 1, labels=None)


if __name__ == "__main__":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    mirrored = make_strategy("mirrored", ["/cpu:0", "/cpu:1"])
    compare("stylegan2", strategy=mirrored)  # G, path length, D and R1 steps (StyleGAN's D+G: accumulated)
    print(f"equal on {mirrored.num_replicas_in_sync} replicas")
