"""What `sample.py` runs: load the snapshot once, hand it to the configured task."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from stylegan_exp.atomic import write_atomic
from stylegan_exp.config import (
    EditTask,
    FiguresTask,
    InvertTask,
    MetricsTask,
    RandomTask,
    RankTask,
    SampleConfig,
    VideoTask,
)
from stylegan_exp.legacy import load_any_snapshot
from stylegan_exp.nets.generator import Generator
from stylegan_exp.sample.generate import SampleError, load_d, load_gs, resolve_snapshot, sample

log = logging.getLogger(__name__)


def run_task(cfg: SampleConfig, run_dir: Path) -> list[Path]:
    """Outputs of the task, all inside `run_dir` (rank may also move files into `<folder>/rejected/`)."""
    snapshot = resolve_snapshot(cfg)
    snap = load_any_snapshot(snapshot)
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

        return videos(cfg, Gs, run_dir, snap.path)
    if isinstance(task, InvertTask):
        from stylegan_exp.sample.invert import invert

        return invert(task, Gs, load_d(snap), run_dir)
    if isinstance(task, EditTask):
        from stylegan_exp.sample.edit import edit

        return edit(cfg, Gs, load_d(snap), run_dir)
    if isinstance(task, MetricsTask):
        return [write_metrics(task, Gs, snap.resolution, run_dir)]
    raise SampleError(f"unknown sampling task {type(task).__name__}")


def write_metrics(task: MetricsTask, Gs: Generator, resolution: int, run_dir: Path) -> Path:
    from stylegan_exp.metrics.evaluate import evaluate

    results = evaluate(Gs, Path(task.dataset), resolution, task.metrics, Path(task.metrics.cache_dir))
    for key, value in results.items():
        log.info("%s = %.4g", key, value)
    path = run_dir / "metrics.json"
    write_atomic(path, json.dumps(results, indent=2).encode())
    return path
