"""Rank a folder of images by a snapshot's discriminator: find the worst of a dataset for review/removal."""

from __future__ import annotations

import csv
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.config import RankTask, SampleConfig
from stylegan_exp.data.images import IMAGE_SUFFIXES, ImageError, load_image, resample
from stylegan_exp.data.resize import make_aspect
from stylegan_exp.grid import save_grid
from stylegan_exp.models import network
from stylegan_exp.nets.compiled import compiled, padded_batches
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.progress import progress_bar
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

SHEET_WIDTH = 8


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside `folder`, sorted; a missing or image-less folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_for_network(path: Path, resolution: int, channels: int, aspect: Aspect = SQUARE) -> np.ndarray:
    """Centre-crop to square (or the network's aspect), resize to the snapshot resolution (its short side)
    and map to the network's [-1, 1]."""
    image = load_image(path, channels=channels)
    if not aspect.square:
        image = make_aspect(image, "crop", [], aspect)
        if image.shape[:2] != aspect.shape(resolution):
            image = resample(image, *aspect.size(resolution))
        return image.astype(np.float32) / 127.5 - 1.0
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    image = image[top : top + side, left : left + side]
    if side != resolution:
        image = resample(image, resolution, resolution)
    return image.astype(np.float32) / 127.5 - 1.0


def _scores(D: Discriminator, images: tf.Tensor) -> tf.Tensor:
    return D(images)


def score_images(D: Discriminator, images: np.ndarray, batch_size: int) -> np.ndarray:
    """D scores in batches of a multiple of the minibatch-stddev group; the last batch is padded with its
    own images (compiled once for that shape), then trimmed."""
    group = max(1, D.model.mbstd_group_size)
    batch_size = max(group, batch_size - batch_size % group)
    score = compiled(D, _scores)
    scores = [score(tf.constant(batch)).numpy()[:n]
              for batch, n in progress_bar(padded_batches(images, batch_size), desc="scoring", unit="batch",
                                           total=-(-len(images) // batch_size))]
    return np.concatenate(scores)


def rank(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """Write ranking.csv (best first) and ranking-sheet.png (lowest rows above highest rows)."""
    task: RankTask = cfg.task
    D = network(snap, "D")
    files = list_images(task.folder)
    resolution, channels = D.resolution, D.num_channels
    images, kept = [], []
    for path in progress_bar(files, desc="loading", unit="image"):
        try:
            images.append(load_for_network(path, resolution, channels, D.aspect))
            kept.append(path)
        except ImageError as exc:
            log.warning("skipping %s", exc)
    if not kept:
        raise FileNotFoundError(f"no readable images in {task.folder}")
    batch = np.stack(images)
    scores = score_images(D, batch, task.batch_size)
    order = np.argsort(-scores, kind="stable")
    n_reject = math.ceil(len(kept) * task.reject_percent / 100.0) if task.reject_percent > 0 else 0
    rejected = set(order[len(order) - n_reject :].tolist()) if n_reject else set()

    csv_path = run_dir / "ranking.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "score", "path", "rejected"])
        for r, i in enumerate(order, 1):
            writer.writerow([r, f"{scores[i]:.6f}", str(kept[i]), int(i in rejected)])

    n = min(task.sheet_count, len(kept))
    width = min(SHEET_WIDTH, n)
    blank = np.full((-n % width, *batch.shape[1:]), -1.0, np.float32)
    lowest, highest = batch[order[::-1][:n]], batch[order[:n]]
    sheet = save_grid(np.concatenate([lowest, blank, highest, blank]), run_dir / "ranking-sheet.png",
                      width, size=64)

    if rejected:
        target = Path(task.folder) / "rejected"
        target.mkdir(exist_ok=True)
        for i in sorted(rejected):
            shutil.move(str(kept[i]), target / kept[i].name)
        log.info("moved %d lowest-scored images to %s", len(rejected), target)
    log.info("ranked %d images: best %.3f, worst %.3f", len(kept), scores[order[0]], scores[order[-1]])
    return [csv_path, sheet]
