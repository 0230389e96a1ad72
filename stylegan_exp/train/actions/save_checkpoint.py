"""Checkpoints for resuming: at the start, at every multiple of `run.checkpoint_kimg` and every
`run.checkpoint_minutes` (whichever comes first; a tick ends early when one is due), and at the end of the
run. The kimg multiples do not depend on when the run was resumed, so a resumed run's ticks end where the
uninterrupted run's do."""

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
        self._last = time.time()

    def __call__(self, tick: Tick) -> None:
        self.save("stopping" if tick.done else "interval")

    def save(self, reason: str) -> None:
        self.checkpoint.save()
        self._last = time.time()
        log.info("checkpoint at %.1f kimg (%s)", self.state.kimg, reason)

    def interval_passed(self, since_nimg: int) -> bool:
        """Whether training from `since_nimg` to now crossed a multiple of checkpoint_kimg, or the minutes
        since the last checkpoint passed."""
        every = max(1, round(self.cfg.checkpoint_kimg * 1000))
        return (self.state.nimg // every > since_nimg // every
                or time.time() - self._last >= self.cfg.checkpoint_minutes * 60)
