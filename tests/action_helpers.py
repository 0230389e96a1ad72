"""What the action tests share: a tracker that records, and a finished tick to hand an action."""

from __future__ import annotations

from pathlib import Path

from stylegan_exp.schedule import ScheduleState
from stylegan_exp.train.actions import Tick


class RecordingTracker:
    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, float], float]] = []
        self.images: list[tuple[str, Path, float]] = []
        self.alerts: list[tuple[str, str]] = []
        self.artifacts: list[tuple[Path, str, str]] = []

    def log(self, metrics: dict[str, float], kimg: float) -> None:
        self.logged.append((dict(metrics), kimg))

    def log_image(self, key: str, path: Path, kimg: float) -> None:
        self.images.append((key, path, kimg))

    def alert(self, title: str, text: str) -> None:
        self.alerts.append((title, text))

    def log_artifact(self, path: Path, name: str, type: str) -> None:
        self.artifacts.append((path, name, type))

    def close(self) -> None:
        pass


def tick(index: int = 1, nimg: int = 1000, *, level: int = 4, lod: float = 0.0, done: bool = False,
         checkpoint_due: bool = False, stats: dict[str, float] | None = None) -> Tick:
    sched = ScheduleState(kimg=nimg / 1000, lod=lod, resolution=2**level, minibatch=8, G_lrate=0.002,
                          D_lrate=0.002, tick_kimg=1.0)
    return Tick(index=index, nimg=nimg, sched=sched, stats=stats or {"loss/G": 1.0, "loss/D": 1.0},
                seconds=2.0, images=1000, maintenance=0.1, done=done, checkpoint_due=checkpoint_due)
