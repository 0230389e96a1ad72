"""The training loop: the original `training_loop` semantics driven by a composed `TrainConfig`."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import tensorflow as tf
from omegaconf import OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from stylegan_exp.config import TrainConfig
from stylegan_exp.data.records import load_info, make_dataset
from stylegan_exp.data.synthetic import ensure_synthetic_dataset
from stylegan_exp.grid import save_grid
from stylegan_exp.nets.build import build_discriminator, build_generator
from stylegan_exp.tracking import JsonlTracker, MultiTracker, Tracker, WandbTracker
from stylegan_exp.train.checkpoint import (
    TrainCheckpoint,
    assign_weights,
    find_latest,
    load_snapshot,
    save_snapshot,
    snapshot_name,
)
from stylegan_exp.train.schedule import ScheduleParams, gs_beta, lod_changed, log2_int, training_schedule
from stylegan_exp.train.steps import StepConfig, Steps

log = logging.getLogger(__name__)


def schedule_params(cfg: TrainConfig, resolution: int) -> ScheduleParams:
    s, g = cfg.schedule, cfg.gpus
    return ScheduleParams(
        max_resolution=resolution,
        num_gpus=g.num_gpus,
        lod_initial_resolution=s.lod_initial_resolution,
        lod_training_kimg=s.lod_training_kimg,
        lod_transition_kimg=s.lod_transition_kimg,
        minibatch_base=g.minibatch_base,
        minibatch_dict=dict(g.minibatch_dict),
        max_minibatch_per_gpu=dict(g.max_minibatch_per_gpu),
        G_lrate_base=s.G_lrate_base,
        G_lrate_dict=dict(s.G_lrate_dict),
        D_lrate_base=s.D_lrate_base,
        D_lrate_dict=dict(s.D_lrate_dict),
        lrate_rampup_kimg=s.lrate_rampup_kimg,
        tick_kimg_base=s.tick_kimg_base,
        tick_kimg_dict=None if s.tick_kimg_dict is None else dict(s.tick_kimg_dict),
    )


def resolve_dataset(cfg: TrainConfig) -> tuple[Path, int, int]:
    """Make sure the dataset exists (generating the synthetic one if needed): (dir, train res, channels)."""
    path = Path(cfg.dataset.path)
    if cfg.dataset.synthetic is not None:
        syn = cfg.dataset.synthetic
        ensure_synthetic_dataset(path, count=syn.count, resolution=syn.resolution, seed=syn.seed)
    info = load_info(path)
    resolution = cfg.dataset.resolution or info.resolution
    log2_int(resolution, "dataset.resolution")
    if resolution > info.resolution:
        raise ValueError(f"dataset.resolution={resolution} exceeds the stored {info.resolution} of {path}")
    return path, resolution, info.channels


def _memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _format_time(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


class Trainer:
    """Builds networks, data, trackers and checkpoints for one run, then runs the schedule."""

    def __init__(self, cfg: TrainConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.data_dir, self.resolution, self.channels = resolve_dataset(cfg)
        self.level_max = log2_int(self.resolution)
        self.model = asdict(cfg.model)
        tf.random.set_seed(cfg.seed)
        self.G = build_generator(cfg.model, self.resolution, self.channels)
        self.D = build_discriminator(cfg.model, self.resolution, self.channels)
        self.Gs = build_generator(cfg.model, self.resolution, self.channels)
        step_cfg = StepConfig(cfg.model.r1_gamma, cfg.model.style_mixing_prob, cfg.model.dlatent_avg_beta)
        self.steps = Steps(self.G, self.D, self.Gs, step_cfg, cfg.seed)
        self.steps.update_gs(tf.constant(0.0))
        self.params = schedule_params(cfg, self.resolution)
        grid_n = cfg.grid.width * cfg.grid.height
        grid_z = np.random.RandomState(cfg.grid.seed).randn(grid_n, cfg.model.latent_size)
        self.grid_z = tf.Variable(grid_z.astype(np.float32), trainable=False)
        self.cur_nimg = tf.Variable(int(cfg.transfer.resume_kimg * 1000), dtype=tf.int64, trainable=False)
        self.cur_tick = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.wandb_id = tf.Variable("", trainable=False)
        self.checkpoint = TrainCheckpoint(
            self.run_dir / "checkpoints", G=self.G, D=self.D, Gs=self.Gs, G_opt=self.steps.G_opt,
            D_opt=self.steps.D_opt, rng=self.steps.rng, grid_z=self.grid_z, cur_nimg=self.cur_nimg,
            cur_tick=self.cur_tick, elapsed=self.elapsed, wandb_id=self.wandb_id,
        )
        self.resumed_from = self._resume_or_transfer()
        self.tracker = self._make_tracker()

    def _resume_or_transfer(self) -> str | None:
        r = self.cfg.resume
        if r.mode == "none":
            source = self.cfg.transfer.source
            if source:
                snap = load_snapshot(source)
                for name, net in (("G", self.G), ("D", self.D), ("Gs", self.Gs)):
                    assign_weights(net, snap.subset(name), f"{source} ({name})")
                log.info("transfer: weights from %s, schedule starts at %.1f kimg",
                         source, self.cfg.transfer.resume_kimg)
            return None
        if r.mode == "latest":
            where = find_latest(Path(self.cfg.outputs_root), r.experiment or self.cfg.name, "checkpoint")
        elif r.mode == "path":
            where = Path(r.path or "")
        else:
            raise ValueError(f"resume.mode must be none, latest or path, got {r.mode!r}")
        prefix = self.checkpoint.restore(where)
        log.info("resumed from %s at %.1f kimg, tick %d", prefix, self.cur_nimg.numpy() / 1000,
                 self.cur_tick.numpy())
        return prefix

    def _make_tracker(self) -> Tracker:
        trackers: list[Tracker] = [JsonlTracker(self.run_dir / "metrics.jsonl")]
        lg = self.cfg.logger
        if lg.mode != "disabled":
            wb = WandbTracker(
                self.run_dir, mode=lg.mode, project=lg.project, entity=lg.entity,
                name=f"{self.cfg.name}/{self.run_dir.name}", group=lg.group or self.cfg.name,
                tags=list(lg.tags), config=OmegaConf.to_container(OmegaConf.structured(self.cfg)),
                run_id=self.wandb_id.numpy().decode() or None,
            )
            self.wandb_id.assign(wb.run_id)
            trackers.append(wb)
        return MultiTracker(trackers)

    def _dataset(self, resolution: int, minibatch: int):
        ds = self.cfg.dataset
        return iter(make_dataset(self.data_dir, resolution, minibatch, mirror=ds.mirror,
                                 seed=self.cfg.seed + int(self.cur_nimg.numpy()),
                                 shuffle_buffer=ds.shuffle_buffer, cache=ds.cache))

    def save_fakes(self, level: int, fade: float) -> Path:
        kimg = self.cur_nimg.numpy() / 1000
        chunks = [self.Gs(z, level, fade, randomize_noise=False).numpy()
                  for z in tf.split(self.grid_z, max(1, self.grid_z.shape[0] // 32))]
        path = self.run_dir / f"fakes{int(self.cur_nimg.numpy()) // 1000:06d}.png"
        save_grid(np.concatenate(chunks), path, self.cfg.grid.width, size=self.resolution)
        self.tracker.log_image("fakes", path, kimg)
        return path

    def save_reals(self) -> None:
        n = self.cfg.grid.width * self.cfg.grid.height
        reals = next(iter(make_dataset(self.data_dir, self.resolution, n, cache=False, shuffle_buffer=n)))
        save_grid(reals.numpy(), self.run_dir / "reals.png", self.cfg.grid.width)

    def save_network(self) -> Path:
        kimg = self.cur_nimg.numpy() / 1000
        path = save_snapshot(self.run_dir / snapshot_name(kimg), {"G": self.G, "D": self.D, "Gs": self.Gs},
                             model=self.model, resolution=self.resolution, num_channels=self.channels,
                             kimg=kimg)
        self.checkpoint.save(kimg)
        log.info("saved %s and a resume checkpoint", path.name)
        return path

    def run(self) -> Path | None:
        """Train until total_kimg (or max_minutes); returns the last network snapshot."""
        s = self.cfg.schedule
        total_nimg = int(s.total_kimg * 1000)
        self.save_reals()
        sched = training_schedule(int(self.cur_nimg.numpy()), self.params)
        self.save_fakes(sched.level, sched.fade)
        start = time.time() - float(self.elapsed.numpy())
        tick_start_time, tick_start_nimg = time.time(), int(self.cur_nimg.numpy())
        maintenance = 0.0
        prev_lod, data_key, data = -1.0, None, None
        sums: dict[str, float] = {}
        steps_in_tick = 0
        snapshot = None
        log.info("training %s at %d×%d for %.0f kimg in %s", self.cfg.name, self.resolution,
                 self.resolution, s.total_kimg, self.run_dir)
        bar = tqdm(total=s.total_kimg, initial=self.cur_nimg.numpy() / 1000, unit="kimg", mininterval=2.0,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} kimg [{elapsed}<{remaining}]")
        with logging_redirect_tqdm():
            while True:
                nimg = int(self.cur_nimg.numpy())
                sched = training_schedule(nimg, self.params)
                if (sched.resolution, sched.minibatch) != data_key:
                    data_key = (sched.resolution, sched.minibatch)
                    data = self._dataset(sched.resolution, sched.minibatch)
                if s.reset_opt_for_new_lod and lod_changed(prev_lod, sched.lod):
                    self.steps.reset_optimizers()
                prev_lod = sched.lod
                self.steps.set_learning_rates(sched.G_lrate, sched.D_lrate)
                fade = tf.constant(sched.fade, tf.float32)
                beta = tf.constant(gs_beta(sched.minibatch, s.G_smoothing_kimg), tf.float32)
                for _ in range(s.minibatch_repeats):
                    for _ in range(s.D_repeats):
                        out = self.steps.d_step(next(data), sched.level, fade)
                        self.steps.update_gs(beta)
                        self.cur_nimg.assign_add(sched.minibatch)
                    out.update(self.steps.g_step(tf.constant(sched.minibatch), sched.level, fade))
                    for k, v in out.items():
                        sums[k] = sums.get(k, 0.0) + float(v)
                    steps_in_tick += 1
                nimg = int(self.cur_nimg.numpy())
                bar.update(min(nimg / 1000, s.total_kimg) - bar.n)
                out_of_time = s.max_minutes is not None and time.time() - start >= s.max_minutes * 60
                done = nimg >= total_nimg or out_of_time
                if nimg < tick_start_nimg + sched.tick_kimg * 1000 and not done:
                    continue
                self.cur_tick.assign_add(1)
                tick = int(self.cur_tick.numpy())
                now = time.time()
                tick_time = now - tick_start_time
                tick_kimg = (nimg - tick_start_nimg) / 1000
                self.elapsed.assign(now - start)
                metrics = {k: v / steps_in_tick for k, v in sums.items()}
                metrics.update({
                    "tick": tick, "lod": sched.lod, "resolution": sched.resolution,
                    "minibatch": sched.minibatch, "lr/G": sched.G_lrate, "lr/D": sched.D_lrate,
                    "sec_per_tick": tick_time, "sec_per_kimg": tick_time / max(tick_kimg, 1e-9),
                    "img_per_sec": tick_kimg * 1000 / max(tick_time, 1e-9), "maintenance_sec": maintenance,
                    "memory_gb": _memory_gb(),
                })
                log.info(
                    "tick %-5d kimg %-8.1f lod %-5.2f minibatch %-4d time %-12s sec/tick %-7.1f "
                    "sec/kimg %-7.2f maintenance %-6.1f memory %.1f GB  G %.3f  D %.3f",
                    tick, nimg / 1000, sched.lod, sched.minibatch, _format_time(now - start), tick_time,
                    metrics["sec_per_kimg"], maintenance, metrics["memory_gb"],
                    metrics["loss/G"], metrics["loss/D"],
                )
                self.tracker.log(metrics, nimg / 1000)
                if tick % s.image_snapshot_ticks == 0 or done:
                    self.save_fakes(sched.level, sched.fade)
                if tick % s.network_snapshot_ticks == 0 or done:
                    snapshot = self.save_network()
                sums, steps_in_tick = {}, 0
                tick_start_nimg = nimg
                tick_start_time = time.time()
                maintenance = tick_start_time - now
                if done:
                    if out_of_time and nimg < total_nimg:
                        log.info("stopping at %.1f kimg: schedule.max_minutes=%s reached", nimg / 1000,
                                 s.max_minutes)
                    break
        bar.close()
        self.tracker.close()
        return snapshot


def train(cfg: TrainConfig, run_dir: Path) -> Path | None:
    """Run one composed training config in `run_dir`; returns the final network snapshot."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return Trainer(cfg, run_dir).run()
