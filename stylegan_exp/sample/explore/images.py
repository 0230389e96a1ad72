"""What the explorer shows, made as `sample.py` makes it: the same seeds' latents, truncation, batch shape and
PNG encoder, so a face's PNG is the bytes `sample.py seeds=[s] truncation_psi=ψ` writes and the mixing grid
the pixels of `task=figures`' style-mixing figure.

ψ and the cutoff reach the compiled mapping as tensors: one trace serves every slider position (a Python ψ
would trace again, ~0.5 s, for each new value). TensorFlow's CPU kernels round by batch shape, so the
generator always runs in padded batches of the run's `batch_size`, as sample.py does."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from stylegan_exp.grid import make_grid, to_uint8
from stylegan_exp.models import network
from stylegan_exp.nets.compiled import compiled, run_batched
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.sample.figures import layer_ranges, mixing_cells
from stylegan_exp.sample.generate import seed_latents, synthesize
from stylegan_exp.sample.rank import score_images
from stylegan_exp.snapshot import Snapshot

MAX_SEED = 2**32 - 1  # numpy's RandomState seeds


class RequestError(ValueError):
    """A request the explorer cannot answer (bad seed, ψ, cutoff, range or too many images)."""


def _truncated(Gs: Generator, z: tf.Tensor, psi: tf.Tensor, cutoff: tf.Tensor) -> tf.Tensor:
    """Gs.truncate's w with ψ and cutoff as tensors; ψ = 1 leaves w untouched (no layer below cutoff 0), as
    Gs's call does: the lerp at ψ = 1 may round."""
    return Gs.truncate(Gs.map(z), psi, tf.where(tf.equal(psi, 1.0), 0, cutoff))


@dataclass(frozen=True)
class Truncation:
    """ψ and the cutoff (None: every layer) of one request."""

    psi: float
    cutoff: int | None


class Explorer:
    """The snapshot's Gs (and D, if the snapshot has one) answering the page's requests as uint8 images."""

    def __init__(self, snap: Snapshot, batch_size: int, max_images: int) -> None:
        self.Gs: Generator = network(snap, "Gs")
        self.D: Discriminator | None = network(snap, "D") if snap.subset("D") else None
        self.batch_size = batch_size
        self.max_images = max_images
        self.ranges = layer_ranges(self.Gs.num_layers)

    def check_seeds(self, seeds: list[int]) -> list[int]:
        if not seeds:
            raise RequestError("no seeds given")
        bad = [s for s in seeds if not 0 <= s <= MAX_SEED]
        if bad:
            raise RequestError(f"seed {bad[0]} is outside [0, {MAX_SEED}]")
        return seeds

    def check_truncation(self, trunc: Truncation) -> Truncation:
        if not math.isfinite(trunc.psi):
            raise RequestError(f"psi must be a finite number, got {trunc.psi}")
        if trunc.cutoff is not None and trunc.cutoff < 0:
            raise RequestError(f"cutoff {trunc.cutoff} is negative (a layer count, or none: every layer)")
        return trunc

    def check_range(self, style: str) -> tuple[int, int]:
        if style not in self.ranges:
            raise RequestError(f"unknown mixing range {style!r} (one of {', '.join(self.ranges)})")
        return self.ranges[style]

    def check_pair(self, seeds: list[int]) -> list[int]:
        if len(seeds) != 2:
            raise RequestError(f"two seeds are needed, got {list(seeds)}")
        return self.check_seeds(seeds)

    def check_steps(self, steps: int) -> int:
        if steps < 2:
            raise RequestError(f"steps must be at least 2, got {steps}")
        self.check_count(steps)
        return steps

    def check_count(self, count: int) -> None:
        if count > self.max_images:
            raise RequestError(f"{count} images asked for, more than task.max_images={self.max_images}")

    def dlatents(self, seeds: list[int], trunc: Truncation) -> np.ndarray:
        """w [N, num_layers, dlatent] of the seeds, as sample.py's seed_dlatents."""
        cutoff = self.Gs.num_layers if trunc.cutoff is None else trunc.cutoff
        z = seed_latents(self.check_seeds(seeds), self.Gs.latent_size)
        psi, cut = tf.constant(trunc.psi, tf.float32), tf.constant(cutoff, tf.int32)
        return run_batched(compiled(self.Gs, _truncated), z, self.batch_size, psi, cut)

    def images(self, dlatents: np.ndarray) -> np.ndarray:
        return to_uint8(synthesize(self.Gs, dlatents, batch_size=self.batch_size))

    def face(self, seed: int, trunc: Truncation) -> np.ndarray:
        """uint8 [R, R, C]: sample.py's `example-{seed}.png` at this ψ and cutoff."""
        return self.images(self.dlatents([seed], trunc))[0]

    def score(self, image: np.ndarray) -> float | None:
        """D's score of a shown (uint8) image, read as task=rank reads a PNG; None without a D."""
        if self.D is None:
            return None
        return float(score_images(self.D, image[None].astype(np.float32) / 127.5 - 1.0, 1)[0])

    def mixing(self, rows: list[int], columns: list[int], style: str, trunc: Truncation) -> np.ndarray:
        """uint8 grid of (rows + 1) × (columns + 1) cells, as task=figures' style-mixing-<style>.png."""
        layers = self.check_range(style)
        self.check_count((len(rows) + 1) * (len(columns) + 1))
        src_w, dst_w = self.dlatents(rows, trunc), self.dlatents(columns, trunc)
        cells = mixing_cells(self.Gs, src_w, dst_w, layers, self.batch_size)
        return make_grid(to_uint8(cells), len(columns) + 1)

    def interpolation(self, start: int, stop: int, steps: int, trunc: Truncation) -> np.ndarray:
        """uint8 strip of `steps` faces from seed `start` to `stop` (both ends), w interpolated linearly."""
        self.check_steps(steps)
        w = self.dlatents([start, stop], trunc)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None, None]
        return make_grid(self.images(w[0] + (w[1] - w[0]) * t), steps)
