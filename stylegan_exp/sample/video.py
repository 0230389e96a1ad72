"""mp4 clips (imageio-ffmpeg): latent random walks, style-mixing walks and the training-progress clip."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from stylegan_exp.config import SampleConfig, VideoKind, VideoTask
from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.data.images import ImageError, load_image, resample
from stylegan_exp.grid import make_grid, to_uint8
from stylegan_exp.models import network
from stylegan_exp.nets.generator import Generator
from stylegan_exp.progress import progress_bar
from stylegan_exp.sample.figures import layer_ranges, mix_dlatents
from stylegan_exp.sample.generate import map_latents, seed_dlatents, synthesize
from stylegan_exp.sample.labels import LabelError, label_vector, labelled_dlatents, snapshot_labels
from stylegan_exp.sample.truncation import describe_truncation
from stylegan_exp.snapshot import Snapshot

log = logging.getLogger(__name__)

_MACRO_BLOCK = 16  # H.264 wants frame sides divisible by 16; frames are padded, never rescaled.


def smooth_random_walk(rng: np.random.RandomState, frames: int, shape: tuple[int, ...],
                       sigma: float) -> np.ndarray:
    """[frames, *shape] Gaussian noise smoothed over time (circularly, so the clip loops) and re-normalised
    to unit RMS so the latents stay where the mapping network was trained."""
    z = rng.randn(frames, *shape)
    if sigma > 0:
        t = np.minimum(np.arange(frames), frames - np.arange(frames))
        kernel = np.exp(-0.5 * (t / sigma) ** 2)
        kernel = kernel.reshape(-1, *([1] * len(shape)))
        z = np.real(np.fft.ifft(np.fft.fft(z, axis=0) * np.fft.fft(kernel, axis=0), axis=0))
    z /= np.sqrt(np.mean(np.square(z)))
    return z.astype(np.float32)


def _pad_to_macro_block(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    ph, pw = -h % _MACRO_BLOCK, -w % _MACRO_BLOCK
    frame = np.pad(frame, ((0, ph), (0, pw), (0, 0))) if ph or pw else frame
    return np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame


def write_video(frames: np.ndarray, path: Path, fps: int) -> Path:
    """uint8 frames [T, H, W, C] → H.264 mp4."""
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", quality=8, macro_block_size=1,
                            ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(_pad_to_macro_block(frame))
    return path


def _upscale(images: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or images.shape[-2] >= size:
        return images
    factor = size // images.shape[-2]
    return images.repeat(factor, axis=-3).repeat(factor, axis=-2)


def _walk_dlatents(Gs: Generator, cfg: SampleConfig, z: np.ndarray,
                   labels: np.ndarray | None = None) -> np.ndarray:
    """Truncated w for latents [T, N, latent] → [T, N, num_layers, dlatent], mapped in chunks (with a
    conditional Gs's labels, truncated toward their average w)."""
    flat = z.reshape(-1, z.shape[-1])
    if labels is not None:
        w = labelled_dlatents(Gs, flat, labels, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                              batch_size=256)
        return w.reshape(*z.shape[:2], *w.shape[1:])
    w = map_latents(Gs, flat, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff, batch_size=256)
    return w.reshape(*z.shape[:2], *w.shape[1:])


def _render_frames(Gs: Generator, dlatents: np.ndarray, batch_size: int, desc: str) -> np.ndarray:
    """uint8 cells [T, N, R, R, C] for w [T, N, L, dlatent], several frames per generator call."""
    per_call = max(1, batch_size // dlatents.shape[1])
    chunks = [to_uint8(synthesize(Gs, dlatents[t : t + per_call], batch_size=batch_size))
              for t in progress_bar(range(0, len(dlatents), per_call), desc=desc, unit="chunk")]
    return np.concatenate(chunks)


def interpolation(Gs: Generator, cfg: SampleConfig, task: VideoTask, path: Path,
                  labels: np.ndarray | None = None) -> Path:
    """A grid of independent random walks in z, truncated as the random task."""
    frames = int(round(task.duration_sec * task.fps))
    cells = task.grid_width * task.grid_height
    z = smooth_random_walk(np.random.RandomState(task.seed), frames, (cells, Gs.latent_size),
                           task.smoothing_sec * task.fps)
    images = _render_frames(Gs, _walk_dlatents(Gs, cfg, z, labels), max(cfg.batch_size, cells),
                            "interpolation")
    return write_video(np.stack([make_grid(_upscale(f, task.cell_size), task.grid_width) for f in images]),
                       path, task.fps)


def style_mixing(Gs: Generator, cfg: SampleConfig, task: VideoTask, path: Path, style: str,
                 labels: np.ndarray | None = None) -> Path:
    """Top row: fixed destinations; below: a walking source (left) and each destination with its `style`
    layers taken from the source."""
    frames = int(round(task.duration_sec * task.fps))
    layers = layer_ranges(Gs.num_layers)[style]
    dst_w = seed_dlatents(Gs, task.mixing_destinations, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                          labels=labels)
    dst = to_uint8(synthesize(Gs, dst_w, batch_size=cfg.batch_size))
    top = np.concatenate([np.zeros_like(dst[:1]), dst])
    z = smooth_random_walk(np.random.RandomState(task.seed), frames, (1, Gs.latent_size),
                           task.smoothing_sec * task.fps)
    src_w = _walk_dlatents(Gs, cfg, z, labels)  # [T, 1, L, dlatent]
    mixed = np.stack([mix_dlatents(w, dst_w, layers)[0] for w in src_w])
    cells = _render_frames(Gs, np.concatenate([src_w, mixed], axis=1), max(cfg.batch_size, len(dst) + 1),
                           f"mixing {style}")
    return write_video(np.stack([make_grid(_upscale(np.concatenate([top, f]), task.cell_size), len(dst) + 1)
                                 for f in cells]), path, task.fps)


def tag_morph(Gs: Generator, cfg: SampleConfig, task: VideoTask, space: LabelSpace, path: Path) -> Path:
    """A grid of fixed seeds whose labels move from each of `task.tag_sets` to the next (and back to the
    first): w of every stop, truncated toward its labels' average w, blended with a smoothstep."""
    if len(task.tag_sets) < 2:
        raise LabelError(f"task.tag_sets needs at least two tag sets to move between, got {task.tag_sets}")
    cells = task.grid_width * task.grid_height
    seeds = list(range(task.seed, task.seed + cells))
    stops = [seed_dlatents(Gs, seeds, psi=cfg.truncation_psi, cutoff=cfg.truncation_cutoff,
                           labels=label_vector(space, list(tags))) for tags in task.tag_sets]
    frames = int(round(task.duration_sec * task.fps))
    t = np.arange(frames) * len(stops) / frames
    index, frac = t.astype(int), t - t.astype(int)
    smooth = (frac * frac * (3 - 2 * frac))[:, None, None, None]
    start = np.stack([stops[i] for i in index])
    end = np.stack([stops[(i + 1) % len(stops)] for i in index])
    log.info("tags clip: %s", " → ".join("+".join(tags) for tags in task.tag_sets))
    images = _render_frames(Gs, start + (end - start) * smooth, max(cfg.batch_size, cells), "tags")
    return write_video(np.stack([make_grid(_upscale(f, task.cell_size), task.grid_width) for f in images]),
                       path, task.fps)


def progress(run: Path, task: VideoTask, path: Path) -> Path:
    """The run's `fakes*.png` in kimg order, each downscaled to at most `progress_max_width` pixels wide."""
    if not run.is_dir():
        raise FileNotFoundError(f"training run folder not found: {run}")
    fakes = sorted(run.glob("fakes*.png"))
    if not fakes:
        raise FileNotFoundError(f"no fakes*.png in {run}")
    last = load_image(fakes[-1])
    scale = min(1.0, task.progress_max_width / last.shape[1])
    size = (max(1, int(last.shape[1] * scale)), max(1, int(last.shape[0] * scale)))
    frames = []
    for fake in progress_bar(fakes, desc="progress", unit="frame"):
        try:
            image = load_image(fake, channels=last.shape[-1])
        except ImageError as exc:
            log.warning("skipping %s", exc)
            continue
        frames.append(resample(image, *size))
    return write_video(np.stack(frames), path, task.progress_fps)


def videos(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    task: VideoTask = cfg.task
    if VideoKind.tags in task.kinds and snap.labels is None:
        raise LabelError(f"task.kinds=[tags] needs a conditional snapshot; {snap.path} is unconditional")
    walks = [k for k in task.kinds if k not in (VideoKind.progress, VideoKind.tags)]
    labels = snapshot_labels(snap, cfg.tags) if walks or cfg.tags else None
    Gs = network(snap, "Gs")
    if any(kind != "progress" for kind in task.kinds):
        log.info("latent walks with %s",
                 describe_truncation(cfg.truncation_psi, cfg.truncation_cutoff, snap.model, Gs.num_layers))
    paths = []
    for kind in task.kinds:
        path = run_dir / f"{kind}.mp4"
        if kind == "interpolation":
            paths.append(interpolation(Gs, cfg, task, path, labels))
        elif kind.startswith("mixing_"):
            paths.append(style_mixing(Gs, cfg, task, path, kind.removeprefix("mixing_"), labels))
        elif kind == "tags":
            paths.append(tag_morph(Gs, cfg, task, snap.labels, path))
        else:
            run = Path(task.progress_run) if task.progress_run else snap.path.parent
            paths.append(progress(run, task, path))
    log.info("wrote %s", ", ".join(p.name for p in paths))
    return paths
