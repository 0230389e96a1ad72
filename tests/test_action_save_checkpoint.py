"""SaveCheckpoint: due at an interval (kimg or minutes) or at the end; a save resets the interval."""

import tensorflow as tf
from action_helpers import tick

from stylegan_exp.config import RunConfig
from stylegan_exp.train.actions.save_checkpoint import SaveCheckpoint
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState


def test_interval_by_kimg_and_by_minutes(tmp_path, monkeypatch):
    state = TrainState()
    checkpoint = TrainCheckpoint(tmp_path / "ckpt", state, weights=tf.Variable([1.0]))
    clock = {"now": 1000.0}
    monkeypatch.setattr("time.time", lambda: clock["now"])
    action = SaveCheckpoint(checkpoint, state, RunConfig(checkpoint_kimg=2.0, checkpoint_minutes=10.0))
    assert not action.interval_passed()
    state.nimg = 2000
    assert action.interval_passed()
    action.save("interval")
    assert not action.interval_passed() and (tmp_path / "ckpt" / "ckpt-2000.index").is_file()
    clock["now"] += 601
    assert action.interval_passed()
    assert action.due(tick(done=True)) and action.due(tick(checkpoint_due=True)) and not action.due(tick())


def test_stopping_checkpoint_is_logged_as_such(tmp_path, caplog):
    state = TrainState(nimg=500)
    action = SaveCheckpoint(TrainCheckpoint(tmp_path, state, v=tf.Variable(0.0)), state, RunConfig())
    caplog.set_level("INFO")
    action(tick(done=True))
    assert "checkpoint at 0.5 kimg (stopping)" in caplog.text
    assert not action.interval_passed()
