"""LogTick: the original's tick line in the log, every number of the tick for the trackers."""

import logging

from action_helpers import RecordingTracker, tick

from stylegan_exp.train.actions.log_tick import LogTick, format_time
from stylegan_exp.train.checkpoint import TrainState


def test_tick_line_and_tracked_numbers(caplog):
    tracker, state = RecordingTracker(), TrainState(nimg=1000, elapsed=3725.0, lr_scale=0.5)
    action = LogTick(tracker, state, extra=lambda: {"augment/p": 0.25})
    with caplog.at_level(logging.INFO):
        action(tick(index=3, stats={"loss/G": 1.5, "loss/D": 0.75, "augment/rt": 0.6}))
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("tick 3     kimg 1.0      lod 0.00  minibatch 8    time 1h 02m 05s")
    assert "sec/kimg 2.00" in line and "G 1.500  D 0.750  r_t 0.600  augment p 0.250" in line
    ((logged, kimg),) = tracker.logged
    assert kimg == 1.0 and logged["lr/G"] == 0.001 and logged["augment/p"] == 0.25
    assert logged["img_per_sec"] == 500.0 and logged["tick"] == 3 and logged["resolution"] == 16


def test_time_format():
    assert format_time(65) == "1m 05s" and format_time(7322) == "2h 02m 02s"
