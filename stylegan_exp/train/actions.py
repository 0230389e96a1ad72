"""What the loop does between ticks: small actions, each run when its condition says so after a tick of
training steps (the shape of TensorFlow Model Garden's orbit actions)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stylegan_exp.train.schedule import ScheduleState


@dataclass
class Tick:
    """One finished tick: where training is, what the steps reported, and whether the run ends here."""

    index: int
    nimg: int
    sched: ScheduleState
    stats: dict[str, float]  # the steps' statistics, averaged over the tick
    seconds: float
    images: int  # images shown during the tick
    maintenance: float  # seconds the previous tick's actions took
    done: bool
    checkpoint_due: bool
    out_of_time: bool = False

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


@dataclass(frozen=True)
class Action:
    run: Callable[[Tick], None]
    due: Callable[[Tick], bool] = lambda tick: True


def every(ticks: int) -> Callable[[Tick], bool]:
    """Due every `ticks` ticks, and at the last tick of the run."""
    return lambda tick: tick.index % ticks == 0 or tick.done


def at_checkpoint(tick: Tick) -> bool:
    """Due when a checkpoint interval has passed, and at the last tick of the run."""
    return tick.checkpoint_due or tick.done
