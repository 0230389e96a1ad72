"""What `sample.py` runs: open the snapshot once, hand it to the configured task's runner."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.atomic import write_atomic
from stylegan_exp.config import (
    EditTask,
    ExploreTask,
    ExportTask,
    FiguresTask,
    InvertTask,
    MetricsTask,
    RandomTask,
    RankTask,
    SampleConfig,
    VideoTask,
)
from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.data.reader import load_info
from stylegan_exp.data.vocabulary import same_vocabulary
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.resolution import log2_int
from stylegan_exp.sample.edit import check_edit_task, edit
from stylegan_exp.sample.explore import check_installed, explore
from stylegan_exp.sample.export import export
from stylegan_exp.sample.figures import figures
from stylegan_exp.sample.generate import SampleError, resolve_snapshot, sample
from stylegan_exp.sample.invert import invert
from stylegan_exp.sample.rank import rank
from stylegan_exp.sample.video import videos
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

TaskRunner = Callable[[SampleConfig, Snapshot, Path], list[Path]]


def write_metrics(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """metrics.json with the snapshot's metrics against `task.dataset` at the snapshot's resolution."""
    from stylegan_exp.metrics.evaluate import evaluate

    task: MetricsTask = cfg.task
    if snap.labels is not None:  # fakes draw their labels from this dataset's: it must be the same vocabulary
        same_vocabulary(snap.labels, load_info(task.dataset).labels or LabelSpace([]), str(snap.path))
    results = evaluate(network(snap, "Gs"), Path(task.dataset), snap.resolution, task.metrics,
                       Path(task.metrics.cache_dir))
    for key, value in results.items():
        log.info("%s = %.4g", key, value)
    path = run_dir / "metrics.json"
    write_atomic(path, json.dumps(results, indent=2).encode())
    return [path]


# Every task's runner, keyed by its config dataclass (config.TASKS): all outputs go inside `run_dir`
# (rank may also move files into `<folder>/rejected/`).
RUNNERS: dict[type, TaskRunner] = {
    RandomTask: sample,
    FiguresTask: figures,
    VideoTask: videos,
    RankTask: rank,
    InvertTask: invert,
    EditTask: edit,
    MetricsTask: write_metrics,
    ExportTask: export,
    ExploreTask: explore,
}
# What a task checks before the snapshot is opened (an optional extra it needs).
PREFLIGHTS: dict[type, Callable[[Any], None]] = {ExploreTask: lambda task: check_installed(),
                                                 EditTask: check_edit_task}


def preflight(cfg: SampleConfig) -> None:
    """The configured task's own checks that need no snapshot."""
    check = PREFLIGHTS.get(type(cfg.task))
    if check is not None:
        check(cfg.task)


def open_snapshot(snapshot: str, outputs_root: str, name: str, full_network: bool) -> Snapshot:
    """The snapshot to sample (`latest` of experiment `name`, or a path or URL), as it was trained unless
    `full_network` asks for every layer of one saved while growing."""
    source = resolve_snapshot(snapshot, outputs_root, name)
    snap = load_snapshot(source)
    aspect = parse_aspect(snap.aspect)
    log.info("snapshot %s (%s, kimg %.1f)", source, aspect.describe(snap.resolution), snap.kimg)
    if snap.lod > 0 and full_network:
        log.info("the snapshot was saved while growing (lod %.3f); full_network=true runs every layer",
                 snap.lod)
        return dataclasses.replace(snap, lod=0.0)
    if snap.lod > 0:
        level = log2_int(snap.resolution) - math.floor(snap.lod)
        log.info("the snapshot was saved while growing (lod %.3f): its networks run as trained, at %s with "
                 "%.2f of %s faded in, upscaled to %s (full_network=true runs every layer)", snap.lod,
                 aspect.describe(2**level), snap.lod - math.floor(snap.lod),
                 aspect.describe(2 ** (level - 1)), aspect.describe(snap.resolution))
    return snap


# The tasks that sample a conditional snapshot (by `tags`, with the real label distribution: metrics, or with
# the label as an input of the exported files: export, which refuses tags itself).
LABELLED: tuple[type, ...] = (RandomTask, FiguresTask, VideoTask, MetricsTask, ExportTask)


def run_task(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """The configured task on the open snapshot (`cfg` with its truncation filled in from it)."""
    runner = RUNNERS.get(type(cfg.task))
    if runner is None:
        raise SampleError(f"unknown sampling task {type(cfg.task).__name__}")
    if not isinstance(cfg.task, LABELLED) and (cfg.tags or snap.labels is not None):
        what = f"tags={list(cfg.tags)}" if cfg.tags else f"the conditional snapshot {snap.path}"
        raise SampleError(f"task={cfg.task.name} does not take labels yet: {what} samples with task=random, "
                          "figures, video, metrics or export")
    log.info("task %s", cfg.task.name)
    return runner(cfg, snap, run_dir)
