"""RollBack and Restart: back to the last checkpoint's weights and counters, a bounded number of times."""

import numpy as np
import pytest
import tensorflow as tf
from action_helpers import RecordingTracker

from stylegan_exp.config import RunConfig
from stylegan_exp.train.actions.recovery import NonFiniteError, Restart, RollBack
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState


def _saved(tmp_path):
    state, weight = TrainState(nimg=1000), tf.Variable([1.0, 2.0])
    checkpoint = TrainCheckpoint(tmp_path, state, weight=weight)
    checkpoint.save()
    state.nimg, state.tick = 1500, 7
    weight.assign([np.nan, 5.0])
    return state, weight, checkpoint


def test_rollback_restores_weights_and_lowers_learning_rates(tmp_path):
    state, weight, checkpoint = _saved(tmp_path)
    tracker = RecordingTracker()
    cfg = RunConfig(rollback_lr_factor=0.25, max_rollbacks=1)
    roll_back = RollBack(checkpoint, state, tracker, cfg)
    roll_back(NonFiniteError("non-finite loss/G=nan"))
    np.testing.assert_array_equal(weight.numpy(), [1.0, 2.0])
    assert (state.nimg, state.lr_scale) == (1000, 0.25)
    assert tracker.logged == [({"rollback/lr_scale": 0.25, "rollback/from_kimg": 1.5}, 1.0)]
    with pytest.raises(NonFiniteError, match="again"):
        roll_back(NonFiniteError("again"))


def test_restart_restores_then_gives_up(tmp_path):
    state, weight, checkpoint = _saved(tmp_path)
    restart = Restart(checkpoint, RunConfig(max_restarts=1))
    restart(RuntimeError("device lost"))
    np.testing.assert_array_equal(weight.numpy(), [1.0, 2.0])
    assert state.nimg == 1000 and restart.count == 1
    with pytest.raises(RuntimeError, match="twice"):
        restart(RuntimeError("twice"))
