"""What `sample.py` runs: load the snapshot once, hand it to the configured task."""

from __future__ import annotations

import logging
from pathlib import Path

from stylegan_exp.config import (
    EditTask,
    FiguresTask,
    InvertTask,
    RandomTask,
    RankTask,
    SampleConfig,
    VideoTask,
)
from stylegan_exp.sample.generate import SampleError, load_d, load_gs, resolve_snapshot, sample
from stylegan_exp.train.checkpoint import load_snapshot

log = logging.getLogger(__name__)


def run_task(cfg: SampleConfig, run_dir: Path) -> list[Path]:
    """Outputs of the task, all inside `run_dir` (rank may also move files into `<folder>/rejected/`)."""
    snapshot = resolve_snapshot(cfg)
    snap = load_snapshot(snapshot)
    log.info("task %s on %s (%d², kimg %.1f)", cfg.task.name, snapshot, snap.resolution, snap.kimg)
    task = cfg.task
    if isinstance(task, RankTask):
        from stylegan_exp.sample.rank import rank

        return rank(task, load_d(snap), run_dir)
    Gs = load_gs(snap)
    if isinstance(task, RandomTask):
        return sample(cfg, Gs, run_dir)
    if isinstance(task, FiguresTask):
        from stylegan_exp.sample.figures import figures

        return figures(cfg, Gs, run_dir)
    if isinstance(task, VideoTask):
        from stylegan_exp.sample.video import videos

        return videos(cfg, Gs, run_dir, snapshot)
    if isinstance(task, InvertTask):
        from stylegan_exp.sample.invert import invert

        return invert(task, Gs, load_d(snap), run_dir)
    if isinstance(task, EditTask):
        from stylegan_exp.sample.edit import edit

        return edit(cfg, Gs, load_d(snap), run_dir)
    raise SampleError(f"unknown sampling task {type(task).__name__}")
