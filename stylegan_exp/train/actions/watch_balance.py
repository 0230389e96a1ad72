"""The G/D balance watch after every tick: a warning in the log and an alert to the trackers."""

from __future__ import annotations

import logging

from stylegan_exp.tracking import Tracker
from stylegan_exp.train.actions import Tick, always
from stylegan_exp.train.balance import BalanceWatch

log = logging.getLogger("stylegan_exp.train.loop")


class WatchBalance:
    due = staticmethod(always)

    def __init__(self, watch: BalanceWatch, tracker: Tracker) -> None:
        self.watch, self.tracker = watch, tracker

    def __call__(self, tick: Tick) -> None:
        warning = self.watch.update(tick.stats["loss/D"], tick.stats["loss/G"])
        if warning:
            log.warning(warning)
            self.tracker.alert("G/D imbalance", warning)
