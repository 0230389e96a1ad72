"""What the loop does between ticks: small actions, each a class of its own module that runs when it is due
after a tick of training steps (the shape of TensorFlow Model Garden's orbit actions). Outputs (log line,
balance watch, fakes, snapshots, metrics, checkpoints) run per tick; recovery (rollback after NaN/Inf,
restart after an exception) and stop signals are the run's answers to events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from stylegan_exp.schedule import ScheduleState


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
    interrupted: bool = False  # ended early by a stop signal or max_minutes: a resumed run continues it

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


class Action(Protocol):
    def due(self, tick: Tick) -> bool: ...

    def __call__(self, tick: Tick) -> None: ...


def every(ticks: int) -> Callable[[Tick], bool]:
    """Due every `ticks` ticks, and at the last tick of the run."""
    return lambda tick: tick.index % ticks == 0 or tick.done


def always(tick: Tick) -> bool:
    return True


def at_checkpoint(tick: Tick) -> bool:
    """Due when a checkpoint interval has passed, and at the last tick of the run."""
    return tick.checkpoint_due or tick.done
