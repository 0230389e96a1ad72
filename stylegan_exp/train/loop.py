"""The training loop: the original `training_loop` semantics driven by a composed `TrainConfig`."""

from __future__ import annotations

import dataclasses
import logging
import resource
import signal
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from stylegan_exp.config import (
    ConfigError,
    ModelConfig,
    StyleGAN2Config,
    StyleGANConfig,
    TrainConfig,
    WandbMode,
    model_config,
    write_config,
)
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.reader import load_info, make_dataset
from stylegan_exp.data.synthetic import ensure_synthetic_dataset
from stylegan_exp.grid import save_grid
from stylegan_exp.metrics.evaluate import evaluate
from stylegan_exp.nets.build import build_discriminator, build_generator
from stylegan_exp.progress import progress_bar
from stylegan_exp.resolution import log2_int
from stylegan_exp.snapshot import (
    Snapshot,
    SnapshotError,
    assign_weights,
    load_snapshot,
    snapshot_arrays,
    write_snapshot,
)
from stylegan_exp.tracking import JsonlTracker, MultiTracker, Tracker, WandbTracker
from stylegan_exp.train.actions import Action, Tick, at_checkpoint, every
from stylegan_exp.train.balance import BalanceWatch
from stylegan_exp.train.checkpoint import TrainCheckpoint, TrainState
from stylegan_exp.train.distribute import WorkerGroup, make_strategy, network_scope, worker_rows
from stylegan_exp.train.output_names import OutputNames
from stylegan_exp.train.resume import resume_target
from stylegan_exp.train.schedule import ScheduleState, kimg_at_lod, lod_changed, training_schedule
from stylegan_exp.train.steps import Steps
from stylegan_exp.train.stylegan2_steps import StyleGAN2Steps
from stylegan_exp.train.transfer import adopt_architecture, implied_overrides

log = logging.getLogger(__name__)


class NonFiniteError(FloatingPointError):
    """A loss or weight became NaN/Inf: the run rolls back to its last checkpoint."""


@dataclass
class _Pass:
    """Loop state that lives for one pass of `_train` (made anew after a rollback or a restart)."""

    start: float  # wall-clock start, less the training time of earlier runs
    data: Iterator[tf.Tensor] | None = None
    data_key: tuple[int, int] | None = None
    prev_lod: float = -1.0
    maintenance: float = 0.0  # seconds the last tick's actions took


_BAR_FORMAT = "{l_bar}{bar}| {n:.1f}/{total:.0f} kimg [{elapsed}<{remaining}]"


class _KimgBar:
    """The run's progress in kimg. It starts after the first training steps, whose time is mostly tracing,
    so that its rate, and the time left, are the training's."""

    def __init__(self, total_kimg: float, enabled: bool) -> None:
        self.total, self.enabled = total_kimg, enabled
        self.bar: tqdm | None = None

    def show(self, kimg: float) -> None:
        kimg = min(kimg, self.total)
        if self.bar is None:
            self.bar = progress_bar(total=self.total, initial=kimg, unit="kimg", mininterval=2.0,
                                    enabled=self.enabled, bar_format=_BAR_FORMAT)
        else:
            self.bar.update(kimg - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# Each architecture's training steps (optimizers, losses, per-iteration recipe), keyed by its config class.
STEPS: dict[type[ModelConfig], type[Steps]] = {StyleGANConfig: Steps, StyleGAN2Config: StyleGAN2Steps}


def resolve_dataset(cfg: TrainConfig, workers: WorkerGroup | None = None) -> tuple[Path, int, int]:
    """Make sure the dataset exists (generating the synthetic one if needed): (dir, train res, channels).

    The chief draws a synthetic dataset first; the others then find it on a shared filesystem, or draw
    the same faces themselves on a local one.
    """
    path = Path(cfg.dataset.path)
    if cfg.dataset.synthetic is not None:
        syn = cfg.dataset.synthetic
        chief = workers is None or workers.is_chief
        if chief:
            ensure_synthetic_dataset(path, count=syn.count, resolution=syn.resolution, seed=syn.seed)
        if workers is not None and workers.count > 1:
            workers.barrier()
            if not chief:
                ensure_synthetic_dataset(path, count=syn.count, resolution=syn.resolution, seed=syn.seed)
    info = load_info(path)
    resolution = cfg.dataset.resolution or info.resolution
    try:
        log2_int(resolution, "dataset.resolution")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if resolution > info.resolution:
        raise DatasetError(f"dataset.resolution={resolution} exceeds the stored {info.resolution} of {path}")
    return path, resolution, info.channels


def connect(cfg: TrainConfig) -> WorkerGroup:
    """The strategy for `gpus` and this process's place among the workers; must precede any other TF op."""
    return WorkerGroup(make_strategy(cfg.gpus.strategy, cfg.gpus.devices, cfg.gpus.port_base))


def _memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _format_time(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def warn_without_gpus(cfg: TrainConfig) -> None:
    """A GPU preset on a machine without GPUs says so before training on the CPU."""
    if cfg.gpus.gpu and not tf.config.list_physical_devices("GPU"):
        log.warning("gpus=%s is a GPU preset but TensorFlow sees no GPU here: training on the CPU with that "
                    "preset's minibatches (gpus=cpu has CPU-sized ones)", cfg.gpus.name)


def check_replicas(cfg: TrainConfig, workers: WorkerGroup) -> None:
    """The schedule rounds minibatches for `gpus.num_gpus` replicas; the strategy must have a divisor."""
    replicas = workers.strategy.num_replicas_in_sync
    if replicas % workers.count:
        raise ConfigError(f"gpus.strategy={cfg.gpus.strategy}: {replicas} replicas do not split evenly over "
                          f"{workers.count} workers; give every worker the same number of GPUs")
    if cfg.gpus.num_gpus % replicas:
        raise ConfigError(
            f"gpus.num_gpus={cfg.gpus.num_gpus} is not a multiple of the {replicas} replicas the "
            f"{cfg.gpus.strategy} strategy found ({workers.count} worker(s)); set gpus.num_gpus={replicas}")
    if replicas < cfg.gpus.num_gpus:
        log.warning("gpus=%s is for %d GPUs but the %s strategy found %d replica(s): each replica trains "
                    "%d GPUs' share of every minibatch", cfg.gpus.name, cfg.gpus.num_gpus, cfg.gpus.strategy,
                    replicas, cfg.gpus.num_gpus // replicas)
    if workers.count > 1 and cfg.train.max_restarts:
        raise ConfigError(
            f"train.max_restarts={cfg.train.max_restarts} needs a single worker: one worker cannot re-enter "
            f"the loop while {workers.count - 1} other(s) wait in a collective; set train.max_restarts=0 and "
            "resubmit with resume=latest")


class Trainer:
    """Builds networks, data, trackers and checkpoints for one run, then runs the schedule: ticks of
    training steps, each followed by the actions that are due (log, balance watch, fakes, snapshot, metrics,
    checkpoint).

    `workers` comes from `connect` when the entry point must agree on the run dir before writing to it;
    without it the strategy is made here.
    """

    def __init__(self, cfg: TrainConfig, run_dir: Path, workers: WorkerGroup | None = None,
                 explicit: Collection[str] = (), resume_from: Path | None = None) -> None:
        """`explicit`: the keys set on the command line (`model.fmap_max`, `transfer.resume_kimg` …), which a
        snapshot the run continues must not contradict. `resume_from`: the checkpoint or snapshot the run
        continues, as `run.training_config` found it (else found here from `cfg.resume`)."""
        self.run_dir = Path(run_dir)
        self.workers = workers or connect(cfg)  # before any other TF op
        self.strategy = self.workers.strategy
        self.is_chief = self.workers.is_chief
        warn_without_gpus(cfg)
        check_replicas(cfg, self.workers)
        self.data_dir, self.resolution, self.channels = resolve_dataset(cfg, self.workers)
        self.level_max = log2_int(self.resolution)
        self._resume_from = self._agreed_target(resume_target(cfg) if resume_from is None else resume_from)
        self.source = self._network_source(cfg)
        if self.source is not None:
            cfg = self._adopt(cfg, self.source, explicit)
        self.cfg = cfg
        tf.random.set_seed(cfg.seed)
        with network_scope(self.strategy):
            self.G = build_generator(cfg.model, self.resolution, self.channels)
            self.D = build_discriminator(cfg.model, self.resolution, self.channels)
            self.Gs = build_generator(cfg.model, self.resolution, self.channels)
        self.steps = STEPS[type(cfg.model)](self.G, self.D, self.Gs, cfg.model, cfg.seed,
                                             accumulate=cfg.schedule.accumulate, strategy=self.strategy,
                                             worker=(self.workers.index, self.workers.count),
                                             augment=cfg.augment, freeze_d=cfg.transfer.freeze_d)
        self.steps.update_gs(tf.constant(0.0))
        grid_n = cfg.grid.width * cfg.grid.height
        grid_z = np.random.RandomState(cfg.grid.seed).randn(grid_n, cfg.model.latent_size)
        self.grid_z = tf.Variable(grid_z.astype(np.float32), trainable=False)
        self.state = TrainState(nimg=int(round(cfg.transfer.resume_kimg * 1000)))
        self.last_snapshot: Path | None = None
        self.names = OutputNames()
        self.stop_signal: int | None = None  # agreed by all workers; set from _received_signal
        self._received_signal: int | None = None
        self._last_checkpoint = (self.state.nimg, time.time())
        self.checkpoint = TrainCheckpoint(
            self.run_dir / "checkpoints", self.state, cfg.train.keep_checkpoints, self.is_chief,
            G=self.G, D=self.D, Gs=self.Gs, grid_z=self.grid_z, **self.steps.checkpoint_objects(),
        )
        self.balance = BalanceWatch(cfg.metrics.balance)
        self._resume_or_transfer()
        self.tracker = self._make_tracker()
        s = cfg.schedule
        self.actions = [
            Action(self._log_tick),
            Action(self._watch_balance),
            Action(self._save_fakes_at, every(s.image_snapshot_ticks)),
            Action(self._save_network_at, every(s.network_snapshot_ticks)),
            *([Action(self._evaluate_at, every(cfg.metrics.interval_ticks))] if cfg.metrics.names else []),
            Action(self._checkpoint_at, at_checkpoint),
        ]

    def _agreed_target(self, target: Path | None) -> Path | None:
        """Every worker continues the chief's checkpoint; each found its own before connecting (no worker can
        have written a newer one by then), so a difference means another run is writing there."""
        if target is None or self.workers.count == 1:
            return target
        chief = Path(self.workers.from_chief(str(target)))
        if chief != target:
            raise ConfigError(f"worker {self.workers.index} found {target} to resume but the chief found "
                              f"{chief}: another run is writing to {target.parent}")
        return chief

    def _network_source(self, cfg: TrainConfig) -> Snapshot | None:
        """The network snapshot the run continues: transfer's source, or a snapshot given to resume=path."""
        if self._resume_from is None:
            return load_snapshot(cfg.transfer.source) if cfg.transfer.source else None
        return load_snapshot(self._resume_from) if self._resume_from.suffix == ".npz" else None

    def _adopt(self, cfg: TrainConfig, snap: Snapshot, explicit: Collection[str]) -> TrainConfig:
        """The run's config with the snapshot's architecture and, for a transfer from a snapshot saved while
        growing, a start where the schedule reaches the snapshot's lod (unless transfer.resume_kimg is set);
        every adopted value is logged and written to the run's config.yaml."""
        if (snap.resolution, snap.num_channels) != (self.resolution, self.channels):
            raise ConfigError(
                f"{snap.path} holds {snap.resolution}² networks with {snap.num_channels} channel(s) but "
                f"dataset {cfg.dataset.name} ({self.data_dir}) trains {self.resolution}² images with "
                f"{self.channels}: use a dataset of the snapshot's size (dataset.resolution can only lower "
                "the stored one)")
        model, lines = adopt_architecture(cfg.model, snap.model, str(snap.path), explicit)
        transfer = cfg.transfer
        if (self._resume_from is None and snap.lod > 0 and not transfer.resume_kimg
                and "transfer.resume_kimg" not in explicit):
            kimg = kimg_at_lod(snap.lod, cfg.schedule, self.resolution)
            reached = training_schedule(int(round(kimg * 1000)), cfg.schedule, cfg.gpus, self.resolution).lod
            if abs(reached - snap.lod) > 1e-6:
                log.warning("%s was saved at lod %.3f, which this schedule never reaches (it starts at lod "
                            "%.3f)", snap.path, snap.lod, reached)
            transfer = dataclasses.replace(transfer, resume_kimg=kimg)
            lines.append(f"transfer.resume_kimg={kimg:g}: {snap.path} was saved while growing (lod "
                         f"{snap.lod:.3f}), where this schedule reaches it (set transfer.resume_kimg to "
                         "start elsewhere)")
        if not lines:
            return cfg
        for line in lines:
            log.info("%s", line)
        cfg = dataclasses.replace(cfg, model=model, transfer=transfer)
        if self.is_chief:
            write_config(self.run_dir, cfg)
        return cfg

    def _resume_or_transfer(self) -> None:
        if self.source is not None:
            for name, net in (("G", self.G), ("D", self.D), ("Gs", self.Gs)):
                assign_weights(net, self.source.subset(name), f"{self.source.path} ({name})")
            if self._resume_from is None:
                log.info("transfer: weights from %s, schedule starts at %.1f kimg", self.source.path,
                         self.cfg.transfer.resume_kimg)
            else:
                self.state.nimg = int(round(self.source.kimg * 1000))
                log.info("resumed networks from snapshot %s at %.1f kimg (fresh optimizer state)",
                         self.source.path, self.source.kimg)
        elif self._resume_from is not None:
            prefix = self._restore_checkpoint(self._resume_from)
            log.info("resumed from %s at %.1f kimg, tick %d", prefix, self.state.kimg, self.state.tick)

    def _restore_checkpoint(self, where: Path) -> str:
        """Restore a checkpoint; one that does not fit names the model overrides its run's config implies."""
        try:
            return self.checkpoint.restore(where)
        except SnapshotError:
            run_config = (where if where.is_dir() else where.parent).parent / "config.yaml"
            if run_config.is_file():
                try:
                    recorded = OmegaConf.to_container(OmegaConf.load(run_config).model)
                    implied = implied_overrides(self.cfg.model, model_config(self.cfg.model.ARCH, recorded))
                except (ConfigError, OmegaConfBaseException):  # another architecture's config
                    implied = f"the model recorded in {run_config}"
                if implied:
                    raise ConfigError(f"checkpoint {where} was trained with another architecture: resume "
                                      f"with {implied}") from None
            raise

    def _make_tracker(self) -> Tracker:
        if not self.is_chief:
            return MultiTracker([])
        trackers: list[Tracker] = [JsonlTracker(self.run_dir / "metrics.jsonl")]
        lg = self.cfg.logger
        if lg.mode != WandbMode.disabled:
            wb = WandbTracker(
                self.run_dir, mode=lg.mode.value, project=lg.project, entity=lg.entity,
                name=f"{self.cfg.name}/{self.run_dir.name}", group=lg.group or self.cfg.name,
                tags=list(lg.tags),
                config=OmegaConf.to_container(OmegaConf.structured(self.cfg), enum_to_str=True),
                run_id=self.state.wandb_id or None,
            )
            self.state.wandb_id = wb.run_id
            trackers.append(wb)
        return MultiTracker(trackers)

    def _dataset(self, resolution: int, minibatch: int) -> Iterator[tf.Tensor]:
        """This worker's share of each global minibatch; every worker shuffles the same way."""
        ds, workers = self.cfg.dataset, self.workers
        keep = None
        if workers.count > 1:
            keep = worker_rows(np.arange(minibatch // workers.count), workers=workers.count,
                               index=workers.index, local_replicas=self.steps.local_replicas,
                               accumulate=self.cfg.schedule.accumulate)
        return iter(make_dataset(self.data_dir, resolution, minibatch, mirror=ds.mirror,
                                 seed=self.cfg.seed + self.state.nimg,
                                 shuffle_buffer=ds.shuffle_buffer, cache=ds.cache, keep=keep))

    def save_fakes(self, level: int, fade: float) -> Path:
        chunks = [self.Gs(z, level, fade, randomize_noise=False).numpy()
                  for z in tf.split(self.grid_z, max(1, self.grid_z.shape[0] // 32))]
        path = self.run_dir / self.names.fakes(self.state.nimg)
        if self.is_chief:
            save_grid(np.concatenate(chunks), path, self.cfg.grid.width, size=self.resolution)
            self.tracker.log_image("fakes", path, self.state.kimg)
        return path

    def save_reals(self) -> None:
        if not self.is_chief:
            return
        n = self.cfg.grid.width * self.cfg.grid.height
        reals = next(iter(make_dataset(self.data_dir, self.resolution, n, cache=False, shuffle_buffer=n)))
        save_grid(reals.numpy(), self.run_dir / "reals.png", self.cfg.grid.width)

    def evaluate_metrics(self, level: int) -> dict[str, float]:
        """Metrics on full-resolution fakes; skipped (with a note) until the networks reach it."""
        if level != self.level_max:
            log.info("metrics wait for the final resolution (now %d²)", 2**level)
            return {}
        m = self.cfg.metrics
        results = evaluate(self.Gs, self.data_dir, self.resolution, m, Path(m.cache_dir))
        log.info("metrics at %.1f kimg: %s", self.state.kimg,
                 "  ".join(f"{k} {v:.4g}" for k, v in results.items()))
        self.tracker.log(results, self.state.kimg)
        return results

    def save_network(self) -> Path:
        kimg = self.state.kimg
        arrays = snapshot_arrays({"G": self.G, "D": self.D, "Gs": self.Gs}, model=self.cfg.model,
                                 resolution=self.resolution, num_channels=self.channels, kimg=kimg,
                                 lod=self._schedule().lod)
        path = self.run_dir / self.names.snapshot(self.state.nimg)
        if not self.is_chief:
            return path
        write_snapshot(path, arrays)
        log.info("saved %s", path.name)
        if self.cfg.logger.log_snapshots:
            self.tracker.log_artifact(path, name=f"{self.cfg.name}-snapshot", type="model")
        return path

    def save_checkpoint(self, reason: str) -> None:
        self.checkpoint.save()
        self._last_checkpoint = (self.state.nimg, time.time())
        log.info("checkpoint at %.1f kimg (%s)", self.state.kimg, reason)

    def _checkpoint_due(self) -> bool:
        c = self.cfg.train
        last_nimg, last_time = self._last_checkpoint
        return (self.state.nimg - last_nimg >= c.checkpoint_kimg * 1000
                or time.time() - last_time >= c.checkpoint_minutes * 60)

    def _stop_handler(self, signum: int, _frame: object) -> None:
        self._received_signal = signum
        log.warning("received %s: finishing this step, then writing a checkpoint",
                    signal.Signals(signum).name)

    def run(self) -> Path | None:
        """Train until total_kimg (or max_minutes, or SIGINT/SIGTERM); returns the last network snapshot.

        An exception re-enters the loop from the last checkpoint up to `train.max_restarts` times; a
        non-finite loss or weight rolls back to it with the learning rates scaled by `rollback_lr_factor`.
        """
        if self.state.nimg >= self.cfg.schedule.total_kimg * 1000:
            log.warning("nothing to train: schedule.total_kimg=%g does not go beyond the start at %.1f kimg; "
                        "raise it to train further", self.cfg.schedule.total_kimg, self.state.kimg)
            self.tracker.close()
            return None
        self.save_reals()
        self.save_fakes(*self._level_and_fade())
        self.save_checkpoint("start")
        restarts = rollbacks = 0
        handlers = {sig: signal.signal(sig, self._stop_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        bar = _KimgBar(self.cfg.schedule.total_kimg, enabled=self.is_chief)
        log.info("training %s at %d×%d for %.0f kimg in %s", self.cfg.name, self.resolution,
                 self.resolution, self.cfg.schedule.total_kimg, self.run_dir)
        try:
            with logging_redirect_tqdm():
                while True:
                    try:
                        return self._train(bar)
                    except NonFiniteError as exc:
                        rollbacks += 1
                        if rollbacks > self.cfg.train.max_rollbacks:
                            raise
                        self._roll_back(str(exc))
                    except Exception:
                        if restarts >= self.cfg.train.max_restarts:
                            raise
                        restarts += 1
                        log.exception("training failed; restart %d of %d from the last checkpoint",
                                      restarts, self.cfg.train.max_restarts)
                        self.checkpoint.restore(self.checkpoint.directory)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            bar.close()
            self.tracker.close()

    def _schedule(self) -> ScheduleState:
        return training_schedule(self.state.nimg, self.cfg.schedule, self.cfg.gpus, self.resolution,
                                 growing=type(self.cfg.model).PROGRESSIVE)

    def _level_and_fade(self) -> tuple[int, float]:
        sched = self._schedule()
        return sched.level, sched.fade

    def _roll_back(self, reason: str) -> None:
        bad_kimg = self.state.kimg
        prefix = self.checkpoint.restore(self.checkpoint.directory)
        self.state.lr_scale *= self.cfg.train.rollback_lr_factor
        message = (f"{reason} at {bad_kimg:.1f} kimg: rolled back to the checkpoint at {self.state.kimg:.1f} "
                   f"kimg ({Path(prefix).name}); learning rates now ×{self.state.lr_scale:.4g}")
        log.warning(message)
        self.tracker.log({"rollback/lr_scale": self.state.lr_scale, "rollback/from_kimg": bad_kimg},
                         self.state.kimg)

    def _train(self, bar: _KimgBar) -> Path | None:
        run = _Pass(start=time.time() - self.state.elapsed)
        while True:
            tick = self._run_tick(run, bar)
            started = time.time()
            for action in self.actions:
                if action.due(tick):
                    action.run(tick)
            run.maintenance = time.time() - started
            if tick.done:
                self._log_stop(tick)
                return self.last_snapshot

    def _run_tick(self, run: _Pass, bar: _KimgBar) -> Tick:
        """Training steps until the tick's kimg is reached, a checkpoint is due or the run must stop; a tick
        whose losses or weights are not finite raises NonFiniteError (the run rolls back)."""
        s = self.cfg.schedule
        started, first_nimg = time.time(), self.state.nimg
        sums: dict[str, float] = {}
        count = 0
        while True:
            sched = self._schedule()
            if (sched.resolution, sched.minibatch) != run.data_key:
                run.data_key = (sched.resolution, sched.minibatch)
                run.data = self._dataset(sched.resolution, sched.minibatch)
            if s.reset_opt_for_new_lod and lod_changed(run.prev_lod, sched.lod):
                self.steps.reset_optimizers()
            run.prev_lod = sched.lod
            lr_scale = self.state.lr_scale
            self.steps.set_learning_rates(sched.G_lrate * lr_scale, sched.D_lrate * lr_scale)
            stats, shown = self.steps.iteration(run.data, sched, s)
            self.state.nimg += shown
            for out in stats:
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
            count += len(stats)
            bar.show(self.state.kimg)
            out_of_time = s.max_minutes is not None and time.time() - run.start >= s.max_minutes * 60
            out_of_time, checkpoint_due = self._agree(out_of_time, self._checkpoint_due())
            done = self.state.nimg >= s.total_kimg * 1000 or out_of_time or self.stop_signal is not None
            if self.state.nimg >= first_nimg + sched.tick_kimg * 1000 or done or checkpoint_due:
                break
        means = {k: v / count for k, v in sums.items()}
        if not all(np.isfinite(v) for v in means.values()) or not self._weights_finite():
            bad = ", ".join(f"{k}={v:.4g}" for k, v in means.items() if not np.isfinite(v))
            raise NonFiniteError(f"non-finite {bad or 'weights'}")
        now = time.time()
        self.state.tick += 1
        self.state.elapsed = now - run.start
        return Tick(index=self.state.tick, nimg=self.state.nimg, sched=sched, stats=means,
                    seconds=now - started, images=self.state.nimg - first_nimg, maintenance=run.maintenance,
                    done=done, checkpoint_due=checkpoint_due, out_of_time=out_of_time)

    def _log_tick(self, tick: Tick) -> None:
        """The original's tick line, and every number of the tick for the trackers."""
        sched, lr_scale = tick.sched, self.state.lr_scale
        logged = {**tick.stats, **self.steps.log_state()}
        logged.update({
            "tick": tick.index, "lod": sched.lod, "resolution": sched.resolution,
            "minibatch": sched.minibatch,
            "lr/G": sched.G_lrate * lr_scale, "lr/D": sched.D_lrate * lr_scale,
            "sec_per_tick": tick.seconds, "sec_per_kimg": tick.seconds / max(tick.images / 1000, 1e-9),
            "img_per_sec": tick.images / max(tick.seconds, 1e-9), "maintenance_sec": tick.maintenance,
            "memory_gb": _memory_gb(),
        })
        augment = "".join(f"  {label} {logged[key]:.3f}" for key, label in (("augment/rt", "r_t"),
                                                                             ("augment/p", "augment p"))
                          if key in logged)
        log.info(
            "tick %-5d kimg %-8.1f lod %-5.2f minibatch %-4d time %-12s sec/tick %-7.1f "
            "sec/kimg %-7.2f maintenance %-6.1f memory %.1f GB  G %.3f  D %.3f%s",
            tick.index, tick.kimg, sched.lod, sched.minibatch, _format_time(self.state.elapsed), tick.seconds,
            logged["sec_per_kimg"], tick.maintenance, logged["memory_gb"], logged["loss/G"], logged["loss/D"],
            augment,
        )
        self.tracker.log(logged, tick.kimg)

    def _watch_balance(self, tick: Tick) -> None:
        warning = self.balance.update(tick.stats["loss/D"], tick.stats["loss/G"])
        if warning:
            log.warning(warning)
            self.tracker.alert("G/D imbalance", warning)

    def _save_fakes_at(self, tick: Tick) -> None:
        self.save_fakes(tick.sched.level, tick.sched.fade)

    def _save_network_at(self, tick: Tick) -> None:
        self.last_snapshot = self.save_network()

    def _evaluate_at(self, tick: Tick) -> None:
        self.evaluate_metrics(tick.sched.level)

    def _checkpoint_at(self, tick: Tick) -> None:
        self.save_checkpoint("stopping" if tick.done else "interval")

    def _agree(self, out_of_time: bool, checkpoint_due: bool) -> tuple[bool, bool]:
        """Wall-clock and signal decisions of all workers, so every one ends the tick at the same step."""
        signals = (signal.SIGTERM, signal.SIGINT)
        *received, out_of_time, checkpoint_due = self.workers.any_of(
            [self._received_signal == s for s in signals] + [out_of_time, checkpoint_due])
        if self.stop_signal is None:
            self.stop_signal = next((s for s, r in zip(signals, received, strict=True) if r), None)
        return out_of_time, checkpoint_due

    def _weights_finite(self) -> bool:
        variables = self.G.trainable_variables + self.D.trainable_variables
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

    def _log_stop(self, tick: Tick) -> None:
        if self.stop_signal is not None:
            log.warning("stopped by %s at %.1f kimg; continue with resume=latest",
                        signal.Signals(self.stop_signal).name, tick.kimg)
        elif tick.out_of_time and tick.nimg < self.cfg.schedule.total_kimg * 1000:
            log.info("stopping at %.1f kimg: schedule.max_minutes=%s reached", tick.kimg,
                     self.cfg.schedule.max_minutes)
