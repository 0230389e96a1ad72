"""Image metrics (`metrics.kinds`) every `metrics.interval_ticks` ticks, once the networks reach the
final resolution."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from stylegan_exp.config import MetricsConfig
from stylegan_exp.metrics.evaluate import evaluate
from stylegan_exp.nets.generator import Generator
from stylegan_exp.tracking import Tracker
from stylegan_exp.train.actions import Tick
from stylegan_exp.train.checkpoint import TrainState

log = logging.getLogger("stylegan_exp.train.loop")


class EvaluateMetrics:
    def __init__(self, Gs: Generator, data_dir: Path, cfg: MetricsConfig, state: TrainState, tracker: Tracker,
                 due: Callable[[Tick], bool]) -> None:
        self.Gs, self.data_dir, self.cfg = Gs, data_dir, cfg
        self.state, self.tracker, self.due = state, tracker, due

    def __call__(self, tick: Tick) -> None:
        self.evaluate(tick.sched.level)

    def evaluate(self, level: int) -> dict[str, float]:
        """Metrics on full-resolution fakes; skipped (with a note) until the networks reach it."""
        if level != self.Gs.resolution_log2:
            log.info("metrics wait for the final resolution (now %d²)", 2**level)
            return {}
        results = evaluate(self.Gs, self.data_dir, self.Gs.resolution, self.cfg, Path(self.cfg.cache_dir))
        log.info("metrics at %.1f kimg: %s", self.state.kimg,
                 "  ".join(f"{k} {v:.4g}" for k, v in results.items()))
        self.tracker.log(results, self.state.kimg)
        return results
