"""The fakes grid from fixed latents (`fakes<kimg>.png`), every `schedule.image_snapshot_ticks` ticks and at
the start of the run, at the networks' current level of detail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.grid import save_grid
from stylegan_exp.nets.generator import Generator
from stylegan_exp.tracking import Tracker
from stylegan_exp.train.actions import Tick
from stylegan_exp.train.checkpoint import TrainState
from stylegan_exp.train.output_names import OutputNames


class SaveFakes:
    def __init__(self, Gs: Generator, grid_z: tf.Variable, grid_width: int, run_dir: Path, names: OutputNames,
                 state: TrainState, tracker: Tracker, due: Callable[[Tick], bool], *,
                 writer: bool = True, grid_c: np.ndarray | None = None,
                 label_names: list[str] | None = None) -> None:
        """`writer`: whether this process writes (every worker computes, collectively); `grid_c`: a
        conditional Gs's labels for the grid's latents (one label per row), named by `label_names` in the
        image's caption."""
        self.Gs, self.grid_z, self.grid_width, self.run_dir = Gs, grid_z, grid_width, run_dir
        self.grid_c, self.caption = grid_c, None
        if grid_c is not None and label_names:
            rows = grid_c[:: max(grid_width, 1)]
            self.caption = "rows: " + " | ".join(
                "+".join(n for n, v in zip(label_names, row, strict=True) if v) or "no tag" for row in rows)
        self.names, self.state, self.tracker, self.due, self.writer = names, state, tracker, due, writer

    def __call__(self, tick: Tick) -> None:
        self.write(tick.sched.level, tick.sched.fade, tick.interrupted)

    def write(self, level: int, fade: float, interrupted: bool = False) -> Path:
        parts = max(1, self.grid_z.shape[0] // 32)
        labels = [None] * parts if self.grid_c is None else tf.split(tf.constant(self.grid_c), parts)
        chunks = [self.Gs(z, level, fade, randomize_noise=False, **({} if c is None else {"c": c})).numpy()
                  for z, c in zip(tf.split(self.grid_z, parts), labels, strict=True)]
        path = self.run_dir / self.names.fakes(self.state.nimg, interrupted)
        if self.writer:
            save_grid(np.concatenate(chunks), path, self.grid_width, size=self.Gs.resolution)
            if self.caption:
                self.tracker.log_image("fakes", path, self.state.kimg, caption=self.caption)
            else:
                self.tracker.log_image("fakes", path, self.state.kimg)
        return path
