"""SaveCheckpoint: due at every multiple of checkpoint_kimg (wherever the run resumed) or after the minutes,
and at the end."""

import tensorflow as tf
from action_helpers import tick

from stylegan_exp.config import RunConfig
from stylegan_exp.train.actions.save_checkpoint import SaveCheckpoint
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState


def test_due_at_kimg_multiples_and_after_the_minutes(tmp_path, monkeypatch):
    state = TrainState()
    checkpoint = TrainCheckpoint(tmp_path / "ckpt", state, weights=tf.Variable([1.0]))
    clock = {"now": 1000.0}
    monkeypatch.setattr("time.time", lambda: clock["now"])
    action = SaveCheckpoint(checkpoint, state, RunConfig(checkpoint_kimg=2.0, checkpoint_minutes=10.0))
    state.nimg = 1984
    assert not action.interval_passed(1920)
    state.nimg = 2048
    assert action.interval_passed(1984)  # crossed 2 kimg
    assert not action.interval_passed(2000)  # since 2000: no multiple crossed
    action.save("interval")
    assert (tmp_path / "ckpt" / "ckpt-2048.index").is_file()
    clock["now"] += 601
    assert action.interval_passed(2048)
    assert action.due(tick(done=True)) and action.due(tick(checkpoint_due=True)) and not action.due(tick())


def test_stopping_checkpoint_is_logged_as_such(tmp_path, caplog):
    state = TrainState(nimg=500)
    action = SaveCheckpoint(TrainCheckpoint(tmp_path, state, v=tf.Variable(0.0)), state, RunConfig())
    caplog.set_level("INFO")
    action(tick(done=True))
    assert "checkpoint at 0.5 kimg (stopping)" in caplog.text and not action.interval_passed(500)
