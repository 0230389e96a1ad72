"""Images from a network snapshot for given seeds and truncation ψ: the helpers every task builds on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.config import SampleConfig
from stylegan_exp.data.images import save_image
from stylegan_exp.grid import to_uint8
from stylegan_exp.models import network
from stylegan_exp.nets.compiled import compiled, run_batched
from stylegan_exp.nets.generator import Generator
from stylegan_exp.progress import progress_bar
from stylegan_exp.sample.labels import describe_labels, labelled_dlatents, snapshot_labels
from stylegan_exp.sample.truncation import describe_truncation
from stylegan_exp.snapshot import Snapshot, find_latest

log = logging.getLogger(__name__)


class SampleError(ValueError):
    """A sampling task's settings that cannot work (unknown figure kind, malformed seed range …)."""


def seed_latents(seeds: list[int], latent_size: int) -> np.ndarray:
    """One latent per seed, the same for a seed whatever else is in the batch (original's RandomState)."""
    return np.stack([np.random.RandomState(s).randn(latent_size) for s in seeds]).astype(np.float32)


def _dlatents(Gs: Generator, z: tf.Tensor, psi: float, cutoff: int | None) -> tf.Tensor:
    w = Gs.map(z)
    return Gs.truncate(w, psi, cutoff) if psi != 1.0 else w


def _synthesize(Gs: Generator, dlatents: tf.Tensor, randomize_noise: bool) -> tf.Tensor:
    return Gs.synthesize(dlatents, randomize_noise)


def _generate(Gs: Generator, z: tf.Tensor, psi: float, cutoff: int | None,
              randomize_noise: bool) -> tf.Tensor:
    return Gs(z, psi=psi, cutoff=cutoff, randomize_noise=randomize_noise)


def map_latents(Gs: Generator, z: np.ndarray, *, psi: float = 1.0, cutoff: int | None = None,
             batch_size: int = 16) -> np.ndarray:
    """w [N, num_layers, dlatent] for latents [N, latent], truncated below `cutoff` (all layers when None)."""
    return run_batched(compiled(Gs, _dlatents), np.asarray(z, np.float32), batch_size, psi, cutoff)


def seed_dlatents(Gs: Generator, seeds: list[int], *, psi: float = 1.0, cutoff: int | None = None,
                  batch_size: int = 16, labels: np.ndarray | None = None) -> np.ndarray:
    """w [N, num_layers, dlatent] for the seeds, truncated below `cutoff` (all layers when None); a
    conditional Gs's with `labels` ([c_dim] for every seed, or one row per seed), truncated toward each
    label's average w."""
    z = seed_latents(seeds, Gs.latent_size)
    if labels is not None:
        return labelled_dlatents(Gs, z, labels, psi=psi, cutoff=cutoff, batch_size=batch_size)
    return map_latents(Gs, z, psi=psi, cutoff=cutoff, batch_size=batch_size)


def synthesize(Gs: Generator, dlatents: np.ndarray, *, randomize_noise: bool = False,
               batch_size: int = 16) -> np.ndarray:
    """Network outputs in [-1, 1] (NHWC float) for w of any leading shape [..., num_layers, dlatent]."""
    lead = dlatents.shape[:-2]
    flat = dlatents.reshape(-1, *dlatents.shape[-2:]).astype(np.float32)
    images = run_batched(compiled(Gs, _synthesize), flat, batch_size, randomize_noise)
    return images.reshape(*lead, *images.shape[1:])


def generate(Gs: Generator, seeds: list[int], *, psi: float, cutoff: int | None,
             randomize_noise: bool = False, batch_size: int = 16,
             labels: np.ndarray | None = None) -> np.ndarray:
    """uint8 images [N, R, R, C] for the seeds, truncated below `cutoff` (every layer when None). No default
    truncation: it is the snapshot's (`snap.model`) or the user's, never one architecture's constant.
    A conditional Gs samples with `labels` (see seed_dlatents)."""
    if labels is not None:
        w = seed_dlatents(Gs, seeds, psi=psi, cutoff=cutoff, batch_size=batch_size, labels=labels)
        return to_uint8(synthesize(Gs, w, randomize_noise=randomize_noise, batch_size=batch_size))
    z = seed_latents(seeds, Gs.latent_size)
    return to_uint8(run_batched(compiled(Gs, _generate), z, batch_size, psi, cutoff, randomize_noise))


def resolve_snapshot(snapshot: str, outputs_root: str, name: str) -> Path | str:
    """`latest` of experiment `name`, or the given path or URL (an original .pkl may be a URL)."""
    if snapshot == "latest":
        return find_latest(Path(outputs_root), name, "snapshot")
    return snapshot


def resolve_seeds(cfg: SampleConfig) -> list[int]:
    if cfg.seed_range is None:
        return list(cfg.seeds)
    if len(cfg.seed_range) != 2:
        raise SampleError(f"seed_range must be [start, stop], got {cfg.seed_range}")
    return list(range(*cfg.seed_range))


def sample(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """Write `example-{seed}.{format}` for every seed into `run_dir`."""
    labels = snapshot_labels(snap, cfg.tags)
    Gs = network(snap, "Gs")
    seeds = resolve_seeds(cfg)
    log.info("sampling %d seeds with %s", len(seeds),
             describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model, Gs.num_layers))
    if labels is not None:
        log.info("%s", describe_labels(snap.labels, labels, cfg.truncation_psi))
    paths = []
    for start in progress_bar(range(0, len(seeds), cfg.batch_size), unit="batch"):
        batch = seeds[start : start + cfg.batch_size]
        images = generate(Gs, batch, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                          randomize_noise=cfg.randomize_noise, batch_size=cfg.batch_size, labels=labels)
        for seed, image in zip(batch, images, strict=True):
            path = Path(run_dir) / f"example-{seed}.{cfg.image_format}"
            save_image(image, path)
            paths.append(path)
    log.info("wrote %d images to %s", len(paths), run_dir)
    return paths
