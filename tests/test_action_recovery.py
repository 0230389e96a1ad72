"""RollBack and Restart: back to the last checkpoint's weights and counters, a bounded number of times."""

import numpy as np
import pytest
import tensorflow as tf
from action_helpers import RecordingTracker

from stylegan_exp.config import RunConfig
from stylegan_exp.steps.adam import Adam
from stylegan_exp.train.actions.recovery import NonFiniteError, Restart, RollBack
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState


def _saved(tmp_path):
    """A checkpoint of stand-ins for G, D, Gs and their Adam optimizers after one step, then a second step
    that moves every one of them (G's weights to NaN) and the counters on."""
    state = TrainState(nimg=1000)
    nets = {name: tf.Module(name=name) for name in ("G", "D", "Gs")}
    for i, net in enumerate(nets.values()):
        net.w = tf.Variable([1.0 + i, 2.0 + i])
    opts = {f"{name}_opt": Adam([nets[name].w], name=f"{name}_opt") for name in ("G", "D")}
    checkpoint = TrainCheckpoint(tmp_path, state, **nets, **opts)

    def step(g: float) -> None:
        for name in ("G", "D"):
            opts[f"{name}_opt"].apply([tf.constant([g, -g])], [nets[name].w])
        nets["Gs"].w.assign(0.5 * nets["Gs"].w + 0.5 * nets["G"].w)

    step(1.0)
    prefix = checkpoint.save()
    step(3.0)
    nets["G"].w.assign([np.nan, 5.0])
    state.nimg, state.tick = 1500, 7
    objects = _by_key(nets, opts)
    stored = _stored(prefix)
    assert all(not np.array_equal(v.numpy(), stored[k]) for k, v in objects.items())  # all moved on
    return state, objects, checkpoint, prefix


def _by_key(nets, opts) -> dict[str, tf.Variable]:
    """The stand-ins' variables by their checkpoint key: weights, and each optimizer's step and moments."""
    found = {f"{name}/w": net.w for name, net in nets.items()}
    for name, opt in opts.items():
        found[f"{name}/step"] = opt.step
        found |= {f"{name}/m/{i}": m for i, m in enumerate(opt.m)}
        found |= {f"{name}/v/{i}": v for i, v in enumerate(opt.v)}
    return {f"{key}/.ATTRIBUTES/VARIABLE_VALUE": var for key, var in found.items()}


def _stored(prefix: str) -> dict[str, np.ndarray]:
    return {key: tf.train.load_variable(prefix, key) for key, _ in tf.train.list_variables(prefix)}


def _assert_equal_to_checkpoint(objects: dict[str, tf.Variable], prefix: str) -> None:
    stored = _stored(prefix)
    for key, variable in objects.items():
        np.testing.assert_array_equal(variable.numpy(), stored[key], err_msg=key)


def test_rollback_restores_weights_and_lowers_learning_rates(tmp_path):
    state, objects, checkpoint, prefix = _saved(tmp_path)
    tracker = RecordingTracker()
    cfg = RunConfig(rollback_lr_factor=0.25, max_rollbacks=1)
    roll_back = RollBack(checkpoint, state, tracker, cfg)
    roll_back(NonFiniteError("non-finite loss/G=nan"))
    _assert_equal_to_checkpoint(objects, prefix)
    assert (state.nimg, state.lr_scale) == (1000, 0.25)
    assert tracker.logged == [({"rollback/lr_scale": 0.25, "rollback/from_kimg": 1.5}, 1.0)]
    with pytest.raises(NonFiniteError, match="again"):
        roll_back(NonFiniteError("again"))


def test_restart_restores_then_gives_up(tmp_path):
    state, objects, checkpoint, prefix = _saved(tmp_path)
    restart = Restart(checkpoint, RunConfig(max_restarts=1))
    restart(RuntimeError("device lost"))
    _assert_equal_to_checkpoint(objects, prefix)
    assert state.nimg == 1000 and restart.count == 1
    with pytest.raises(RuntimeError, match="twice"):
        restart(RuntimeError("twice"))
