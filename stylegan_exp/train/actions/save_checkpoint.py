"""Checkpoints for resuming: at the start, every `run.checkpoint_kimg` or `run.checkpoint_minutes`
(whichever comes first; a tick ends early when one is due), and at the end of the run."""

from __future__ import annotations

import logging
import time

from stylegan_exp.config import RunConfig
from stylegan_exp.train.actions import Tick, at_checkpoint
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState

log = logging.getLogger("stylegan_exp.train.loop")


class SaveCheckpoint:
    due = staticmethod(at_checkpoint)

    def __init__(self, checkpoint: TrainCheckpoint, state: TrainState, cfg: RunConfig) -> None:
        self.checkpoint, self.state, self.cfg = checkpoint, state, cfg
        self._last = (state.nimg, time.time())

    def __call__(self, tick: Tick) -> None:
        self.save("stopping" if tick.done else "interval")

    def save(self, reason: str) -> None:
        self.checkpoint.save()
        self._last = (self.state.nimg, time.time())
        log.info("checkpoint at %.1f kimg (%s)", self.state.kimg, reason)

    def interval_passed(self) -> bool:
        last_nimg, last_time = self._last
        return (self.state.nimg - last_nimg >= self.cfg.checkpoint_kimg * 1000
                or time.time() - last_time >= self.cfg.checkpoint_minutes * 60)
