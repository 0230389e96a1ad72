"""A run's answers to failure: a NaN/Inf loss or weight rolls back to the last checkpoint with lower learning
rates (`RollBack`), an exception re-enters the loop from it (`Restart`), each a bounded number of times."""

from __future__ import annotations

import logging
from pathlib import Path

from stylegan_exp.config import RunConfig
from stylegan_exp.tracking import Tracker
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState

log = logging.getLogger("stylegan_exp.train.loop")


class NonFiniteError(FloatingPointError):
    """A loss or weight became NaN/Inf: the run rolls back to its last checkpoint."""


class RollBack:
    """Learning rates × `run.rollback_lr_factor` after each rollback, at most `run.max_rollbacks`."""

    def __init__(self, checkpoint: TrainCheckpoint, state: TrainState, tracker: Tracker,
                 cfg: RunConfig) -> None:
        self.checkpoint, self.state, self.tracker, self.cfg = checkpoint, state, tracker, cfg
        self.count = 0

    def __call__(self, error: NonFiniteError) -> None:
        """Roll back, or re-raise `error` once the rollbacks are used up."""
        self.count += 1
        if self.count > self.cfg.max_rollbacks:
            raise error
        bad_kimg = self.state.kimg
        prefix = self.checkpoint.restore(self.checkpoint.directory)
        self.state.lr_scale *= self.cfg.rollback_lr_factor
        log.warning("%s at %.1f kimg: rolled back to the checkpoint at %.1f kimg (%s); learning rates now "
                    "×%.4g", error, bad_kimg, self.state.kimg, Path(prefix).name, self.state.lr_scale)
        self.tracker.log({"rollback/lr_scale": self.state.lr_scale, "rollback/from_kimg": bad_kimg},
                         self.state.kimg)


class Restart:
    """Re-enter the loop from the last checkpoint after an exception, at most `run.max_restarts` times."""

    def __init__(self, checkpoint: TrainCheckpoint, cfg: RunConfig) -> None:
        self.checkpoint, self.cfg = checkpoint, cfg
        self.count = 0

    def __call__(self, error: Exception) -> None:
        """Restore, or re-raise `error` once the restarts are used up."""
        if self.count >= self.cfg.max_restarts:
            raise error
        self.count += 1
        log.error("training failed (%s: %s); restart %d of %d from the last checkpoint", type(error).__name__,
                  error, self.count, self.cfg.max_restarts, exc_info=error)
        self.checkpoint.restore(self.checkpoint.directory)
