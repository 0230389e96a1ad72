"""StopSignals: SIGTERM/SIGINT are caught while installed, agreed, and the previous handlers come back."""

import os
import signal

import tensorflow as tf

from stylegan_exp.train.actions.stop_signals import StopSignals
from stylegan_exp.train.distribute import WorkerGroup


def test_a_signal_is_received_agreed_and_the_old_handler_restored():
    signals = StopSignals(WorkerGroup(tf.distribute.get_strategy()))
    before = signal.getsignal(signal.SIGTERM)
    with signals.installed():
        assert signals.agree(True, False) == (True, False) and signals.stop is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received == signal.SIGTERM
        assert signals.agree(False, False) == (False, False)
        assert signals.stop == signal.SIGTERM and signals.stop.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
