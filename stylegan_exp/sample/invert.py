"""GAN inversion: an encoder trained on the generator's own (w, G(w)) pairs gives a starting w, which
per-image optimisation of w (and the noise maps) then refines to reconstruct the image."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from stylegan_exp.aspect import SQUARE, Aspect
from stylegan_exp.atomic import atomic_open
from stylegan_exp.config import InversionConfig, InvertTask, SampleConfig
from stylegan_exp.data.images import IMAGE_SUFFIXES
from stylegan_exp.grid import save_grid
from stylegan_exp.models import network
from stylegan_exp.nets.compiled import graph_function
from stylegan_exp.nets.generator import Generator
from stylegan_exp.nets.layers import Conv2D, Dense, downscale2d, lrelu
from stylegan_exp.nets.network import Discriminator
from stylegan_exp.nets.weights import assign_weights, variables_by_path
from stylegan_exp.progress import progress_bar
from stylegan_exp.sample.rank import list_images, load_for_network
from stylegan_exp.snapshot import Snapshot, SnapshotError
from stylegan_exp.steps.adam import Adam

log = logging.getLogger(__name__)

ENCODER_FMAPS = 64


class Encoder(tf.Module):
    """image [N, R, R, C] → w [N, dlatent]: 3×3 convs with 2× box downscaling to 4×4 (4×8 … at the
    network's aspect), then two dense."""

    def __init__(self, resolution: int, channels: int, dlatent_size: int, fmaps: int = ENCODER_FMAPS,
                 name: str | None = None, aspect: Aspect = SQUARE) -> None:
        super().__init__(name=name)
        self.resolution, self.channels, self.dlatent_size = resolution, channels, dlatent_size
        self.aspect = aspect
        self.fromrgb = Conv2D(channels, fmaps, 1, use_bias=True)
        self.convs = [Conv2D(fmaps, fmaps, 3, use_bias=True) for _ in range(int(np.log2(resolution)) - 2)]
        self.dense0 = Dense(fmaps * 16 * aspect.width * aspect.height, fmaps * 4)
        self.dense1 = Dense(fmaps * 4, dlatent_size, gain=1.0)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        x = lrelu(self.fromrgb(images))
        for conv in self.convs:
            x = downscale2d(lrelu(conv(x)))
        return self.dense1(lrelu(self.dense0(x)))


def train_encoder(Gs: Generator, cfg: InversionConfig, psi: float, seed: int = 0) -> Encoder:
    """Fit the encoder to w from the mapping network and the images they make, w truncated by `psi` on every
    layer whatever the snapshot's cutoff: the encoder predicts one w for all layers."""
    encoder = Encoder(Gs.resolution, Gs.num_channels, int(Gs.w_avg.shape[0]), aspect=Gs.aspect)
    params = list(encoder.trainable_variables)
    opt = Adam(params, lr=cfg.encoder_lr, beta1=0.9, beta2=0.999)
    rng = tf.random.Generator.from_seed(seed)

    @graph_function
    def step() -> tf.Tensor:
        w = Gs.truncate(Gs.map(rng.normal([cfg.encoder_batch, Gs.latent_size])), psi, None)
        images = Gs.synthesize(w, randomize_noise=True)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(encoder(images) - w[:, 0]))
        opt.apply(tape.gradient(loss, params), params)
        return loss

    bar = progress_bar(range(cfg.encoder_steps), desc="encoder", unit="step")
    for i in bar:
        loss = step()
        if i % 50 == 0:
            bar.set_postfix(loss=f"{float(loss):.4f}")
    return encoder


def save_encoder(encoder: Encoder, path: Path) -> Path:
    arrays = {k: v.numpy() for k, v in variables_by_path(encoder).items()}
    shape = [encoder.resolution, encoder.channels, encoder.dlatent_size]
    if not encoder.aspect.square:  # square encoders' files stay as they were
        shape += [encoder.aspect.width, encoder.aspect.height]
    arrays["__shape__"] = np.array(shape)
    with atomic_open(path) as f:
        np.savez(f, **arrays)
    return path


def load_encoder(path: str | Path) -> Encoder:
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"encoder not found: {path}")
    with np.load(path) as data:
        weights = {k: data[k] for k in data.files if k != "__shape__"}
        resolution, channels, dlatent, *aspect = (int(x) for x in data["__shape__"])
    encoder = Encoder(resolution, channels, dlatent, aspect=Aspect(*aspect) if aspect else SQUARE)
    assign_weights(encoder, weights, str(path))
    return encoder


def noise_regularization(maps: list[tf.Tensor]) -> tf.Tensor:
    """The StyleGAN2 projector's penalty on optimised noise maps [1, H, W, 1]: the squared mean
    autocorrelation at a one-pixel shift along each axis, summed over 2× box-downscaled copies down to 8×8,
    so the noise cannot carry image content."""
    total = tf.constant(0.0)
    for v in maps:
        while True:
            total += (tf.square(tf.reduce_mean(v * tf.roll(v, shift=1, axis=2)))
                      + tf.square(tf.reduce_mean(v * tf.roll(v, shift=1, axis=1))))
            if v.shape[1] <= 8:
                break
            v = downscale2d(v)
    return total


@dataclass
class Inversion:
    target: np.ndarray  # [R, R, C] in [-1, 1]
    initial: np.ndarray
    reconstruction: np.ndarray
    w: np.ndarray  # [num_layers, dlatent]
    initial_mse: float
    final_mse: float


class Inverter:
    """Optimises one image's w (W+, per layer) and the noise maps; the generator's noise is restored after."""

    def __init__(self, Gs: Generator, encoder: Encoder, cfg: InversionConfig, D: Discriminator | None = None):
        self.Gs, self.encoder, self.cfg, self.D = Gs, encoder, cfg, D
        self.w = tf.Variable(tf.zeros([1, Gs.num_layers, int(Gs.w_avg.shape[0])]))
        self.noise = [v for k, v in variables_by_path(Gs).items() if k.endswith("noise/noise")]
        params = [self.w] + (self.noise if cfg.optimize_noise else [])
        self.opt = Adam(params, lr=cfg.lr, beta1=0.9, beta2=0.999)
        self.params = params
        regularized = cfg.optimize_noise and Gs.NOISE_REGULARIZED
        self.noise_reg_weight = cfg.noise_reg_weight if regularized else 0.0
        self._step = graph_function(self._step_fn)

    def _loss(self, target: tf.Tensor) -> tf.Tensor:
        image = self.Gs.synthesize(self.w)
        loss = tf.reduce_mean(tf.square(image - target))
        if self.D is not None and self.cfg.d_feature_weight > 0:
            for a, b in zip(self.D.features(image), self.D.features(target), strict=True):
                loss += self.cfg.d_feature_weight * tf.reduce_mean(tf.square(a - b))
        if self.noise_reg_weight > 0:
            loss += self.noise_reg_weight * noise_regularization(self.noise)
        return loss

    def _step_fn(self, target: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(self.params)
            loss = self._loss(target)
        self.opt.apply(tape.gradient(loss, self.params), self.params)
        for n in self.params[1:]:  # keep optimised noise unit Gaussian so it cannot absorb the image
            n.assign((n - tf.reduce_mean(n)) / (tf.math.reduce_std(n) + 1e-8))
        return loss

    def render(self) -> np.ndarray:
        return self.Gs.synthesize(self.w).numpy()[0]

    def __call__(self, target: np.ndarray) -> Inversion:
        saved = [n.numpy() for n in self.noise]
        t = tf.constant(target[None])
        self.w.assign(tf.tile(self.encoder(t)[:, None], [1, self.Gs.num_layers, 1]))
        self.opt.reset()
        initial = self.render()
        for _ in range(self.cfg.steps):
            self._step(t)
        final = self.render()
        for n, value in zip(self.noise, saved, strict=True):
            n.assign(value)
        initial_mse, final_mse = (float(np.mean(np.square(x - target))) for x in (initial, final))
        return Inversion(target, initial, final, self.w.numpy()[0], initial_mse, final_mse)


def image_paths(images: str | Path) -> list[Path]:
    """An image file, or the images of a folder."""
    path = Path(images)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    return list_images(path)


def encoder_psi(cfg: InversionConfig, run_psi: float) -> float:
    """`encoder_psi`, or when unset (None) the run's truncation ψ (the snapshot's unless the user set it)."""
    return run_psi if cfg.encoder_psi is None else cfg.encoder_psi


def get_encoder(Gs: Generator, cfg: InversionConfig, run_dir: Path, run_psi: float) -> Encoder:
    """The configured encoder, or a freshly trained one saved as `encoder.npz` for reuse."""
    if cfg.encoder:
        return load_encoder(cfg.encoder)
    psi = encoder_psi(cfg, run_psi)
    log.info("training the encoder on w truncated with psi=%g on every layer (%s)", psi,
             "task.inversion.encoder_psi" if cfg.encoder_psi is not None else "the run's truncation_psi")
    encoder = train_encoder(Gs, cfg, psi)
    save_encoder(encoder, run_dir / "encoder.npz")
    return encoder


def invert_paths(Gs: Generator, D: Discriminator, paths: list[Path], cfg: InversionConfig,
                 encoder: Encoder) -> list[Inversion]:
    inverter = Inverter(Gs, encoder, cfg, D)
    results = []
    for path in progress_bar(paths, desc="inverting", unit="image"):
        results.append(inverter(load_for_network(path, Gs.resolution, Gs.num_channels, Gs.aspect)))
        log.info("%s: mse %.4f → %.4f", path.name, results[-1].initial_mse, results[-1].final_mse)
    return results


def invert(cfg: SampleConfig, snap: Snapshot, run_dir: Path) -> list[Path]:
    """Per image `<stem>/`: reconstruction.png, w.npy, side-by-side.png (target | encoder | refined);
    inversion.csv sums up the reconstruction errors."""
    task: InvertTask = cfg.task
    Gs, D = network(snap, "Gs"), network(snap, "D")
    paths = image_paths(task.images)
    encoder = get_encoder(Gs, task.inversion, run_dir, cfg.truncation_psi)
    written = []
    rows = []
    for path, result in zip(paths, invert_paths(Gs, D, paths, task.inversion, encoder), strict=True):
        out = run_dir / path.stem
        out.mkdir(exist_ok=True)
        np.save(out / "w.npy", result.w)
        written.append(save_grid(result.reconstruction[None], out / "reconstruction.png", 1))
        written.append(save_grid(np.stack([result.target, result.initial, result.reconstruction]),
                                 out / "side-by-side.png", 3))
        rows.append([path, f"{result.initial_mse:.6f}", f"{result.final_mse:.6f}"])
    with (run_dir / "inversion.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "encoder_mse", "final_mse"])
        writer.writerows(rows)
    return written
