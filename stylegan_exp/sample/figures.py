"""The StyleGAN paper's figures for any snapshot: uncurated grid, style mixing, truncation, noise."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stylegan_exp.config import FigureKind, FiguresTask, SampleConfig
from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.grid import save_grid
from stylegan_exp.models import network
from stylegan_exp.nets.generator import Generator
from stylegan_exp.progress import progress_bar
from stylegan_exp.sample.generate import SampleError, seed_dlatents, synthesize
from stylegan_exp.sample.labels import LabelError, describe_labels, group_rows, label_center, snapshot_labels
from stylegan_exp.sample.truncation import describe_truncation
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

# Layer boundaries of the original 1024² figure (18 style layers): coarse [0,4), middle [4,8), fine [8,18).
_PAPER_LAYERS = 18
_PAPER_BOUNDS = (4, 8)


def layer_ranges(num_layers: int) -> dict[str, tuple[int, int]]:
    """coarse/middle/fine style-layer ranges scaled from the paper's 18 layers to `num_layers`."""
    coarse = max(1, round(num_layers * _PAPER_BOUNDS[0] / _PAPER_LAYERS))
    middle = min(num_layers - 1, max(coarse + 1, round(num_layers * _PAPER_BOUNDS[1] / _PAPER_LAYERS)))
    return {"coarse": (0, coarse), "middle": (coarse, middle), "fine": (middle, num_layers)}


def mix_dlatents(sources: np.ndarray, destinations: np.ndarray, layers: tuple[int, int]) -> np.ndarray:
    """[S, D, L, dlatent]: destination d with source s's styles on layers [start, stop)."""
    mixed = np.repeat(destinations[None], len(sources), axis=0)
    start, stop = layers
    mixed[:, :, start:stop] = sources[:, None, start:stop]
    return mixed


def _blank(like: np.ndarray) -> np.ndarray:
    return np.full_like(like, -1.0)  # black after to_uint8


def uncurated(Gs: Generator, cfg: SampleConfig, task: FiguresTask, path: Path,
              labels: np.ndarray | None = None) -> Path:
    w = seed_dlatents(Gs, task.uncurated_seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                      labels=labels)
    images = synthesize(Gs, w, batch_size=cfg.batch_size)
    return save_grid(images, path, task.uncurated_width, size=task.cell_size)


def style_mixing(Gs: Generator, cfg: SampleConfig, task: FiguresTask, path: Path, style: str,
                 labels: np.ndarray | None = None) -> Path:
    """Top row: destinations; left column: sources; cell (s, d): d with s's `style` layers."""
    ranges = layer_ranges(Gs.num_layers)
    if style not in ranges:
        raise SampleError(f"unknown mixing range {style!r} (one of {', '.join(ranges)})")
    psi, cutoff = cfg.truncation_psi, cfg.truncation_cutoff
    src_w = seed_dlatents(Gs, task.mixing_sources, psi=psi, cutoff=cutoff, labels=labels)
    dst_w = seed_dlatents(Gs, task.mixing_destinations, psi=psi, cutoff=cutoff, labels=labels)
    cells = mixing_cells(Gs, src_w, dst_w, ranges[style], cfg.batch_size)
    return save_grid(cells, path, len(dst_w) + 1, size=task.cell_size)


def mixing_cells(Gs: Generator, src_w: np.ndarray, dst_w: np.ndarray, layers: tuple[int, int],
                 batch_size: int) -> np.ndarray:
    """The style-mixing grid's cells, row-major, (S + 1) × (D + 1): a blank corner and the destinations on
    top, then per source the source and the destinations with its styles on `layers`."""
    src = synthesize(Gs, src_w, batch_size=batch_size)
    dst = synthesize(Gs, dst_w, batch_size=batch_size)
    mixed = synthesize(Gs, mix_dlatents(src_w, dst_w, layers), batch_size=batch_size)
    rows = [np.concatenate([_blank(src[:1]), dst])]
    rows += [np.concatenate([src[i : i + 1], mixed[i]]) for i in range(len(src))]
    return np.concatenate(rows)


def truncation(Gs: Generator, cfg: SampleConfig, task: FiguresTask, path: Path,
               labels: np.ndarray | None = None) -> Path:
    """Rows = seeds, columns = ψ; truncation on every layer as in the paper's figure (toward the labels'
    average w for a conditional Gs)."""
    w = seed_dlatents(Gs, task.truncation_seeds, labels=labels)
    w_avg = Gs.w_avg.numpy() if labels is None else label_center(Gs, labels)
    psis = np.asarray(task.truncation_psis, np.float32)
    swept = w_avg + (w[:, None] - w_avg) * psis[None, :, None, None]
    images = synthesize(Gs, swept, batch_size=cfg.batch_size)
    return save_grid(images.reshape(-1, *images.shape[2:]), path, len(psis), size=task.cell_size)


def noise_std_map(images: np.ndarray) -> np.ndarray:
    """Per-pixel standard deviation over samples (mean over channels), stretched into [-1, 1] for display."""
    std = images.std(axis=0).mean(axis=-1, keepdims=True)
    std = np.clip(std * 4.0, 0.0, 1.0) * 2.0 - 1.0
    return np.repeat(std, images.shape[-1], axis=-1)


def noise(Gs: Generator, cfg: SampleConfig, task: FiguresTask, path: Path,
          labels: np.ndarray | None = None) -> Path:
    """Per seed: the image with fixed noise, `noise_variants` with fresh noise, then the std-dev map."""
    w = seed_dlatents(Gs, task.noise_seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                      labels=labels)
    rows = []
    for one in progress_bar(w, desc="noise", unit="seed"):
        fixed = synthesize(Gs, one[None])
        many = synthesize(Gs, np.repeat(one[None], task.noise_std_samples, axis=0), randomize_noise=True,
                          batch_size=cfg.batch_size)
        rows.append(np.concatenate([fixed, many[: task.noise_variants], noise_std_map(many)[None]]))
    return save_grid(np.concatenate(rows), path, task.noise_variants + 2, size=task.cell_size)


def label_rows(Gs: Generator, cfg: SampleConfig, task: FiguresTask, space: LabelSpace, path: Path) -> Path:
    """One row per value of `task.label_group` (with the other `tags`), the uncurated seeds' first
    `uncurated_width` as columns, each row truncated toward its label's average w."""
    values, rows = group_rows(space, task.label_group, list(cfg.tags))
    seeds = task.uncurated_seeds[: task.uncurated_width]
    labels = np.repeat(rows, len(seeds), axis=0)
    z_seeds = seeds * len(values)
    w = seed_dlatents(Gs, z_seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff, labels=labels)
    images = synthesize(Gs, w, batch_size=cfg.batch_size)
    log.info("labels figure: rows %s", ", ".join(values))
    return save_grid(images, path, len(seeds), size=task.cell_size)


def figures(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    task: FiguresTask = cfg.task
    if FigureKind.labels in task.kinds and snap.labels is None:
        raise LabelError(f"task.kinds=[labels] needs a conditional snapshot; {snap.path} is unconditional")
    only_rows = list(task.kinds) == [FigureKind.labels]
    labels = None if only_rows and snap.labels is not None else snapshot_labels(snap, cfg.tags)
    Gs = network(snap, "Gs")
    log.info("uncurated, style-mixing and noise figures with %s",
             describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model, Gs.num_layers))
    if labels is not None:
        log.info("%s", describe_labels(snap.labels, labels, cfg.truncation_psi))
    paths = []
    for kind in progress_bar(task.kinds, desc="figures", unit="figure"):
        if kind == "uncurated":
            paths.append(uncurated(Gs, cfg, task, run_dir / "uncurated.png", labels))
        elif kind == "style_mixing":
            paths += [style_mixing(Gs, cfg, task, run_dir / f"style-mixing-{style}.png", style, labels)
                      for style in task.mixing_ranges]
        elif kind == "truncation":
            paths.append(truncation(Gs, cfg, task, run_dir / "truncation.png", labels))
        elif kind == "labels":
            paths.append(label_rows(Gs, cfg, task, snap.labels, run_dir / "labels.png"))
        elif snap.model.use_noise:
            paths.append(noise(Gs, cfg, task, run_dir / "noise.png", labels))
        else:
            log.warning("no noise figure: this generator has no noise inputs (model.use_noise=false)")
    log.info("wrote %s", ", ".join(p.name for p in paths))
    return paths
