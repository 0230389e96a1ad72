"""The original's tick line, and every number of the tick for the trackers."""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable

from stylegan_exp.tracking import Tracker
from stylegan_exp.train.actions import Tick, always
from stylegan_exp.train.checkpoint import TrainState

log = logging.getLogger("stylegan_exp.train.loop")


def memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def format_time(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


class LogTick:
    """`extra` adds state the steps report besides their averaged statistics (ADA's p)."""

    due = staticmethod(always)

    def __init__(self, tracker: Tracker, state: TrainState, extra: Callable[[], dict[str, float]]) -> None:
        self.tracker, self.state, self.extra = tracker, state, extra

    def __call__(self, tick: Tick) -> None:
        sched, lr_scale = tick.sched, self.state.lr_scale
        logged = {**tick.stats, **self.extra()}
        logged.update({
            "tick": tick.index, "lod": sched.lod, "resolution": sched.resolution,
            "minibatch": sched.minibatch,
            "lr/G": sched.G_lrate * lr_scale, "lr/D": sched.D_lrate * lr_scale,
            "sec_per_tick": tick.seconds, "sec_per_kimg": tick.seconds / max(tick.images / 1000, 1e-9),
            "img_per_sec": tick.images / max(tick.seconds, 1e-9), "maintenance_sec": tick.maintenance,
            "memory_gb": memory_gb(),
        })
        augment = "".join(f"  {label} {logged[key]:.3f}" for key, label in (("augment/rt", "r_t"),
                                                                             ("augment/p", "augment p"))
                          if key in logged)
        log.info(
            "tick %-5d kimg %-8.1f lod %-5.2f minibatch %-4d time %-12s sec/tick %-7.1f "
            "sec/kimg %-7.2f maintenance %-6.1f memory %.1f GB  G %.3f  D %.3f%s",
            tick.index, tick.kimg, sched.lod, sched.minibatch, format_time(self.state.elapsed), tick.seconds,
            logged["sec_per_kimg"], tick.maintenance, logged["memory_gb"], logged["loss/G"], logged["loss/D"],
            augment,
        )
        self.tracker.log(logged, tick.kimg)
