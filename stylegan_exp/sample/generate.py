"""Images from a network snapshot for given seeds and truncation ψ."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from stylegan_exp.config import SampleConfig
from stylegan_exp.data.images import save_image
from stylegan_exp.grid import to_uint8
from stylegan_exp.nets.build import build_generator
from stylegan_exp.nets.generator import Generator
from stylegan_exp.train.checkpoint import assign_weights, find_latest, load_snapshot

log = logging.getLogger(__name__)


def load_gs(snapshot: str | Path) -> Generator:
    """The sampling generator (Gs) of a network snapshot."""
    snap = load_snapshot(snapshot)
    Gs = build_generator(snap.model, snap.resolution, snap.num_channels)
    assign_weights(Gs, snap.subset("Gs"), f"{snap.path} (Gs)")
    return Gs


def seed_latents(seeds: list[int], latent_size: int) -> np.ndarray:
    """One latent per seed, the same for a seed whatever else is in the batch (original's RandomState)."""
    return np.stack([np.random.RandomState(s).randn(latent_size) for s in seeds]).astype(np.float32)


def generate(Gs: Generator, seeds: list[int], *, psi: float = 0.7, cutoff: int | None = 8,
             randomize_noise: bool = False, batch_size: int = 16) -> np.ndarray:
    """uint8 images [N, R, R, C] for the seeds."""
    z = seed_latents(seeds, Gs.latent_size)
    out = []
    for start in range(0, len(seeds), batch_size):
        batch = tf.constant(z[start : start + batch_size])
        out.append(to_uint8(Gs(batch, psi=psi, cutoff=cutoff, randomize_noise=randomize_noise).numpy()))
    return np.concatenate(out)


def resolve_snapshot(cfg: SampleConfig) -> Path:
    if cfg.snapshot == "latest":
        return find_latest(Path(cfg.outputs_root), cfg.name, "snapshot")
    return Path(cfg.snapshot)


def sample(cfg: SampleConfig, run_dir: Path) -> list[Path]:
    """Write `example-{seed}.{format}` for every seed into `run_dir`."""
    snapshot = resolve_snapshot(cfg)
    Gs = load_gs(snapshot)
    log.info("sampling %d seeds from %s with psi=%s", len(cfg.seeds), snapshot, cfg.truncation_psi)
    paths = []
    for start in tqdm(range(0, len(cfg.seeds), cfg.batch_size), unit="batch"):
        seeds = cfg.seeds[start : start + cfg.batch_size]
        images = generate(Gs, seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                          randomize_noise=cfg.randomize_noise, batch_size=cfg.batch_size)
        for seed, image in zip(seeds, images, strict=True):
            path = Path(run_dir) / f"example-{seed}.{cfg.image_format}"
            save_image(image, path)
            paths.append(path)
    log.info("wrote %d images to %s", len(paths), run_dir)
    return paths
