"""Latent edits: move generated images along the mean difference of two labelled groups' inverted w."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stylegan_exp.config import EditTask, SampleConfig
from stylegan_exp.grid import save_grid
from stylegan_exp.models import network
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.sample.generate import SampleError, seed_dlatents, synthesize
from stylegan_exp.sample.invert import Encoder, get_encoder, invert_paths
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


def edit(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """direction.npy, and edit.png: rows = seeds, columns = w + strength × direction."""
    task: EditTask = cfg.task
    Gs, D = network(snap, "Gs"), network(snap, "D")
    for folder in (task.group_a, task.group_b):
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"group folder not found: {folder}")
    encoder = None
    if needs_inversion(task.group_a) or needs_inversion(task.group_b):
        encoder = get_encoder(Gs, task.inversion, run_dir, cfg.truncation_psi)
    w_a = group_dlatents(task.group_a, Gs, D, task, encoder)
    w_b = group_dlatents(task.group_b, Gs, D, task, encoder)
    if w_a.shape[1:] != (Gs.num_layers, Gs.w_avg.shape[0]) or w_b.shape[1:] != w_a.shape[1:]:
        raise SampleError(f"group w shapes {w_a.shape[1:]}, {w_b.shape[1:]} do not fit this generator")
    direction = w_b.mean(axis=0) - w_a.mean(axis=0)
    np.save(run_dir / "direction.npy", direction)
    log.info("edited seeds with %s",
             describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model, Gs.num_layers))
    w = seed_dlatents(Gs, task.seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff)
    strengths = np.asarray(task.strengths, np.float32)
    edited = w[:, None] + strengths[None, :, None, None] * direction
    images = synthesize(Gs, edited, batch_size=cfg.batch_size)
    grid = save_grid(images.reshape(-1, *images.shape[2:]), run_dir / "edit.png", len(strengths))
    log.info("direction from %d vs %d images, |d| = %.3f", len(w_a), len(w_b), np.linalg.norm(direction))
    return [run_dir / "direction.npy", grid]
