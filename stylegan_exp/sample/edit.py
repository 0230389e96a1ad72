"""Latent edits: move generated images along a direction in W, either the mean difference of two groups'
inverted w, or a tag's direction learnt from a labelled packed dataset (a linear probe on D's features of
the reals scores generated images; or the mean difference of inverted reals with and without the tag)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.atomic import write_atomic
from stylegan_exp.config import EditMethod, EditTask, SampleConfig
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.grid import save_grid
from stylegan_exp.models import network
from stylegan_exp.nets.compiled import compiled, run_batched
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.progress import progress_bar
from stylegan_exp.resolution import is_resolution
from stylegan_exp.sample.generate import SampleError, map_latents, seed_dlatents, seed_latents, synthesize
from stylegan_exp.sample.invert import Encoder, Inverter, get_encoder, invert_paths
from stylegan_exp.sample.probe import LinearProbe, fit_probe, held_out_split, top_bottom_direction
from stylegan_exp.sample.rank import list_images
from stylegan_exp.sample.truncation import describe_truncation
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)


def group_dlatents(folder: str | Path, Gs: Generator, D: Discriminator, task: EditTask,
                   encoder: Encoder | None) -> np.ndarray:
    """w [N, num_layers, dlatent] of a group: the `*/w.npy` of an invert run, else its images inverted."""
    saved = sorted(Path(folder).glob("*/w.npy"))
    if saved:
        return np.stack([np.load(p) for p in saved])
    return np.stack([r.w for r in invert_paths(Gs, D, list_images(folder), task.inversion, encoder)])


def needs_inversion(folder: str | Path) -> bool:
    return not any(Path(folder).glob("*/w.npy"))


def check_edit_task(task: EditTask) -> None:
    """Either two groups or a tag with its dataset, said in one line before the snapshot is opened."""
    if task.tag is None:
        if task.group_a is None or task.group_b is None:
            raise SampleError("task=edit needs task.group_a and task.group_b (image folders or invert run "
                              "dirs), or task.tag with task.dataset (a packed dataset with labels)")
        return
    if task.group_a is not None or task.group_b is not None:
        raise SampleError(f"task.tag={task.tag} learns its direction from task.dataset; "
                          "unset task.group_a and task.group_b")
    if task.dataset is None:
        raise SampleError(f"task.tag={task.tag} needs task.dataset=<a packed dataset with labels>")


def _features(D: Discriminator, images: tf.Tensor) -> tf.Tensor:
    """D's activations after each block above 4×4, average-pooled and joined: the finest map to 8×8 (small
    local detail such as a mouth's shape: a smile probe on the synthetic faces at 32² gets 0.81 balanced
    accuracy with it, 0.60 with every map at 2×2), the deeper ones to 2×2 (what, and roughly where)."""
    pooled = []
    for i, f in enumerate(D.features(images)):
        _, h, w, c = f.shape
        g = min(h, 8 if i == 0 else 2)
        f = tf.reshape(f, [-1, g, h // g, g, w // g, c])
        pooled.append(tf.reshape(tf.reduce_mean(f, axis=[2, 4]), [-1, g * g * c]))
    return tf.concat(pooled, axis=1)


def d_features(D: Discriminator, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Probe features of images in [-1, 1] (NHWC)."""
    return run_batched(compiled(D, _features), np.asarray(images, np.float32), batch_size)


@dataclass
class LabelledReals:
    """What the edit keeps of the labelled reals: D's features of each, whether it has the tag, and the
    first `keep` images on each side (for inversion); the images themselves are not all held in memory."""

    features: np.ndarray
    tagged: np.ndarray
    kept: dict[bool, list[np.ndarray]]


def read_labelled_reals(dataset: str | Path, tag: str, task: EditTask, D: Discriminator, batch_size: int,
                        keep: int = 0) -> LabelledReals:
    """Up to `task.real_images` reals (a seeded shuffle) at D's resolution: features and tag; one line on a
    dataset without labels or `tag`, stored below D's resolution, or with too few images on either side."""
    info = load_info(dataset)
    if info.labels is None:
        raise DatasetError(f"{info.path} has no labels: pack it with tags to learn a tag direction")
    column = info.labels.index(tag)
    resolution = D.resolution
    if info.resolution < resolution or not is_resolution(info.resolution):
        raise DatasetError(f"{info.path} holds {info.resolution}² images; this snapshot makes {resolution}²: "
                           f"pack the dataset at {resolution}² (or a power-of-two multiple)")
    if info.channels != D.num_channels:
        raise DatasetError(f"{info.path} holds {info.channels}-channel images; the snapshot makes "
                           f"{D.num_channels}")
    shuffle = min(info.count, 10_000)  # encoded records: a sample of a large dataset in bounded memory
    ds = make_dataset(info.path, resolution, 1, labels=True, repeat=False, shuffle_buffer=shuffle, seed=0,
                      cache=False).take(task.real_images).unbatch().batch(256)
    features, tagged, kept = [], [], {True: [], False: []}
    for x, c in progress_bar(ds, desc="reading reals", unit="batch"):
        x, y = x.numpy(), c.numpy()[:, column] > 0.5
        features.append(d_features(D, x, batch_size))
        tagged.append(y)
        for image, side in zip(x, y, strict=True):
            if len(kept[bool(side)]) < keep:
                kept[bool(side)].append(image)
    y = np.concatenate(tagged)
    with_tag = int(y.sum())
    if min(with_tag, len(y) - with_tag) < task.min_images:
        raise DatasetError(
            f"tag {tag!r} is on {with_tag} and missing from {len(y) - with_tag} of the {len(y)} images read "
            f"from {info.path}; at least {task.min_images} of each are needed (task.min_images)")
    return LabelledReals(np.concatenate(features), y, kept)


def train_probe(reals: LabelledReals, task: EditTask) -> tuple[LinearProbe, dict]:
    """The probe on D's features of the reals, and its balanced accuracy on the held-out share."""
    x, y = reals.features, reals.tagged
    train, test = held_out_split(y, task.held_out)
    probe = fit_probe(x[train], y[train], l2=task.probe_l2)
    report = {"reals_with_tag": int(y.sum()), "reals_without_tag": int((~y).sum()),
              "probe_held_out_images": len(test),
              "probe_held_out_balanced_accuracy": probe.balanced_accuracy(x[test], y[test])}
    log.info("probe on D's features: held-out balanced accuracy %.3f (chance 0.5) on %d reals, %d tagged",
             report["probe_held_out_balanced_accuracy"], len(test), int(y[test].sum()))
    return probe, report


def probe_direction(Gs: Generator, D: Discriminator, probe: LinearProbe, task: EditTask,
                    batch_size: int) -> np.ndarray:
    """Score `probe_samples` generated images; the top-scored share's mean w − the bottom-scored share's."""
    w = map_latents(Gs, seed_latents(list(range(task.probe_samples)), Gs.latent_size), batch_size=batch_size)
    scores = probe.logits(d_features(D, synthesize(Gs, w, batch_size=batch_size), batch_size))
    log.info("scored %d generated images: %.1f%% have the tag by the probe", len(scores),
             100 * np.mean(scores > 0))
    return top_bottom_direction(w, scores, task.probe_fraction)


def inverted_direction(Gs: Generator, D: Discriminator, reals: LabelledReals, task: EditTask,
                       run_dir: Path, psi: float) -> np.ndarray:
    """Mean w of the kept reals with the tag, inverted, − that of those without."""
    inverter = Inverter(Gs, get_encoder(Gs, task.inversion, run_dir, psi), task.inversion, D)
    means = [np.mean([inverter(image).w for image in progress_bar(reals.kept[side], desc="inverting",
                                                                     unit="image")], axis=0)
             for side in (True, False)]
    return means[0] - means[1]


def edit(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """direction.npy, and edit.png: rows = seeds, columns = w + strength × direction; with a tag also
    edit.json (the probe's held-out accuracy and its mean score of the edited seeds per strength)."""
    task: EditTask = cfg.task
    Gs, D = network(snap, "Gs"), network(snap, "D")
    probe, report = None, {}
    if task.tag is not None:
        keep = task.invert_images if task.method == EditMethod.invert else 0
        reals = read_labelled_reals(task.dataset, task.tag, task, D, cfg.batch_size, keep)
        probe, report = train_probe(reals, task)
        if task.method == EditMethod.probe:
            direction = probe_direction(Gs, D, probe, task, cfg.batch_size)
        else:
            direction = inverted_direction(Gs, D, reals, task, run_dir, cfg.truncation_psi)
    else:
        direction = group_direction(Gs, D, task, run_dir, cfg.truncation_psi)
    np.save(run_dir / "direction.npy", direction)
    log.info("edited seeds with %s",
             describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model, Gs.num_layers))
    w = seed_dlatents(Gs, task.seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff)
    strengths = np.asarray(task.strengths, np.float32)
    edited = w[:, None] + strengths[None, :, None, None] * direction
    images = synthesize(Gs, edited, batch_size=cfg.batch_size)
    flat = images.reshape(-1, *images.shape[2:])
    grid = save_grid(flat, run_dir / "edit.png", len(strengths))
    log.info("direction |d| = %.3f", np.linalg.norm(direction))
    if probe is None:
        return [run_dir / "direction.npy", grid]
    score = probe.probability(d_features(D, flat, cfg.batch_size)).reshape(len(task.seeds), len(strengths))
    report = {"tag": task.tag, "dataset": str(task.dataset), "method": str(task.method), **report,
              "direction_norm": float(np.linalg.norm(direction)), "strengths": strengths.tolist(),
              "probe_score_by_strength": score.mean(axis=0).round(4).tolist()}
    by_strength = zip(strengths, report["probe_score_by_strength"], strict=True)
    log.info("probe score of the edited seeds by strength: %s",
             ", ".join(f"{s:g}: {v:.3f}" for s, v in by_strength))
    path = run_dir / "edit.json"
    write_atomic(path, (json.dumps(report, indent=2) + "\n").encode())
    return [run_dir / "direction.npy", grid, path]


def group_direction(Gs: Generator, D: Discriminator, task: EditTask, run_dir: Path, psi: float) -> np.ndarray:
    """Mean w of group_b − mean w of group_a."""
    for folder in (task.group_a, task.group_b):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"group folder not found: {folder}")
    encoder = None
    if needs_inversion(task.group_a) or needs_inversion(task.group_b):
        encoder = get_encoder(Gs, task.inversion, run_dir, psi)
    w_a = group_dlatents(task.group_a, Gs, D, task, encoder)
    w_b = group_dlatents(task.group_b, Gs, D, task, encoder)
    if w_a.shape[1:] != (Gs.num_layers, Gs.w_avg.shape[0]) or w_b.shape[1:] != w_a.shape[1:]:
        raise SampleError(f"group w shapes {w_a.shape[1:]}, {w_b.shape[1:]} do not fit this generator")
    log.info("direction from %d vs %d images", len(w_a), len(w_b))
    return w_b.mean(axis=0) - w_a.mean(axis=0)
