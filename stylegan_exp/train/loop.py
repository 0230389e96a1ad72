"""The training loop: the original `training_loop` semantics — ticks of the architecture's steps on the
schedule, each followed by the actions that are due — on a run `builder.build_run` made."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from stylegan_exp.config import TrainConfig, write_config
from stylegan_exp.data.reader import make_dataset
from stylegan_exp.grid import save_grid
from stylegan_exp.progress import progress_bar
from stylegan_exp.resolution import log2_int
from stylegan_exp.schedule import ScheduleState, lod_changed, training_schedule
from stylegan_exp.steps.replicas import worker_rows
from stylegan_exp.train.actions import Action, Tick, every
from stylegan_exp.train.actions.evaluate_metrics import EvaluateMetrics
from stylegan_exp.train.actions.log_tick import LogTick
from stylegan_exp.train.actions.recovery import NonFiniteError, Restart, RollBack
from stylegan_exp.train.actions.save_checkpoint import SaveCheckpoint
from stylegan_exp.train.actions.save_fakes import SaveFakes
from stylegan_exp.train.actions.save_snapshot import SaveSnapshot
from stylegan_exp.train.actions.stop_signals import StopSignals
from stylegan_exp.train.actions.watch_balance import WatchBalance
from stylegan_exp.train.balance import BalanceWatch
from stylegan_exp.train.builder import TrainingRun, build_run
from stylegan_exp.train.distribute import WorkerGroup
from stylegan_exp.train.output_names import OutputNames

log = logging.getLogger(__name__)

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


@dataclass
class _Pass:
    """Loop state that lives for one pass of `_train` (made anew after a rollback or a restart)."""

    start: float  # wall-clock start, less the training time of earlier runs
    data: Iterator[tf.Tensor] | None = None
    data_key: tuple[int, int] | None = None
    maintenance: float = 0.0  # seconds the last tick's actions took


class Trainer:
    """Runs the schedule on a built run: ticks of training steps, each followed by the actions that are due
    (log, balance watch, fakes, snapshot, metrics, checkpoint), with rollback, restarts and stop signals.

    `Trainer(cfg, run_dir, …)` builds the run (`builder.build_run`, same arguments)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, workers: WorkerGroup | None = None,
                 explicit: Collection[str] = (), resume_from: Path | None = None) -> None:
        run = build_run(cfg, run_dir, workers, explicit, resume_from)
        self.run_parts = run
        self.cfg, self.run_dir, self.workers, self.state = run.cfg, run.run_dir, run.workers, run.state
        self.G, self.D, self.Gs, self.steps = run.G, run.D, run.Gs, run.steps
        self.checkpoint, self.tracker, self.source = run.checkpoint, run.tracker, run.source
        self.resolution = run.data.resolution
        self.signals = StopSignals(run.workers)
        self.actions = self._actions(run)

    def _actions(self, run: TrainingRun) -> list[Action]:
        cfg, s, names, chief = run.cfg, run.cfg.schedule, OutputNames(run.earlier_outputs), run.is_chief
        self.fakes = SaveFakes(run.Gs, run.grid_z, cfg.grid.width, run.run_dir, names, run.state, run.tracker,
                               every(s.image_snapshot_ticks), writer=chief, grid_c=run.grid_c,
                               label_names=run.labels.names if run.labels else None)
        self.snapshots = SaveSnapshot({"G": run.G, "D": run.D, "Gs": run.Gs}, cfg.model, run.run_dir, names,
                                      run.state, run.tracker, every(s.network_snapshot_ticks),
                                      artifact=f"{cfg.name}-snapshot" if cfg.logger.log_snapshots else None,
                                      writer=chief, labels=run.labels)
        self.checkpoints = SaveCheckpoint(run.checkpoint, run.state, cfg.run)
        metrics = [EvaluateMetrics(run.Gs, run.data.path, cfg.metrics, run.state, run.tracker,
                                   every(cfg.metrics.interval_ticks))] if cfg.metrics.kinds else []
        return [LogTick(run.tracker, run.state, run.steps.log_state),
                WatchBalance(BalanceWatch(cfg.run.balance), run.tracker),
                self.fakes, self.snapshots, *metrics, self.checkpoints]

    @property
    def stop_signal(self) -> int | None:
        """The signal that stopped the run (agreed by all workers), or None."""
        return self.signals.stop

    def save_checkpoint(self, reason: str) -> None:
        self.checkpoints.save(reason)

    def save_fakes(self, level: int, fade: float) -> Path:
        return self.fakes.write(level, fade)

    def save_reals(self) -> None:
        if not self.run_parts.is_chief:
            return
        n = self.cfg.grid.width * self.cfg.grid.height
        reals = next(iter(make_dataset(self.run_parts.data.path, self.resolution, n, cache=False,
                                       shuffle_buffer=n)))
        save_grid(reals.numpy(), self.run_dir / "reals.png", self.cfg.grid.width)

    def run(self) -> Path | None:
        """Train until total_kimg (or max_minutes, or SIGINT/SIGTERM); returns the last network snapshot.
        The run's config.yaml is written (its final config) before the first step."""
        if self.run_parts.is_chief:
            write_config(self.run_dir, self.cfg)
        if self.state.nimg >= self.cfg.schedule.total_kimg * 1000:
            log.warning("nothing to train: schedule.total_kimg=%g does not go beyond the start at %.1f kimg; "
                        "raise it to train further", self.cfg.schedule.total_kimg, self.state.kimg)
            self.tracker.close()
            return None
        self.save_reals()
        if not self.run_parts.resumed:  # a resumed run's grid at this point is its checkpoint's tick's
            self.save_fakes(*self._level_and_fade())
        self.save_checkpoint("start")
        roll_back = RollBack(self.checkpoint, self.state, self.tracker, self.cfg.run)
        restart = Restart(self.checkpoint, self.cfg.run)
        bar = _KimgBar(self.cfg.schedule.total_kimg, enabled=self.run_parts.is_chief)
        log.info("training %s at %d×%d for %g kimg in %s", self.cfg.name,
                 *self.run_parts.data.aspect.size(self.resolution),
                 self.cfg.schedule.total_kimg, self.run_dir)
        try:
            with logging_redirect_tqdm(), self.signals.installed():
                while True:
                    try:
                        return self._train(bar)
                    except NonFiniteError as exc:
                        roll_back(exc)
                    except Exception as exc:
                        restart(exc)
        finally:
            bar.close()
            self.tracker.close()

    def _schedule(self) -> ScheduleState:
        return training_schedule(self.state.nimg, self.cfg.schedule, self.cfg.gpus, self.resolution,
                                 growing=type(self.cfg.model).PROGRESSIVE)

    def _level_and_fade(self) -> tuple[int, float]:
        sched = self._schedule()
        return sched.level, sched.fade

    def _data_stream(self, sched: ScheduleState) -> Iterator[tf.Tensor]:
        """The reals for `sched`'s resolution and minibatch: the stream the run is in (restored by a resume
        or a rollback, continued where the state says), or a new one seeded by where it starts."""
        state = self.state
        began = training_schedule(state.data_start_nimg, self.cfg.schedule, self.cfg.gpus, self.resolution,
                                  growing=type(self.cfg.model).PROGRESSIVE)
        if (began.resolution, began.minibatch) != (sched.resolution, sched.minibatch):
            state.data_start_nimg = state.nimg
        skip = (state.nimg - state.data_start_nimg) // sched.minibatch
        return self._dataset(sched.resolution, sched.minibatch, self.cfg.seed + state.data_start_nimg, skip)

    def _dataset(self, resolution: int, minibatch: int, seed: int, skip: int) -> Iterator[tf.Tensor]:
        """This worker's share of each global minibatch; every worker shuffles the same way."""
        ds, workers = self.cfg.dataset, self.workers
        keep = None
        if workers.count > 1:
            keep = worker_rows(np.arange(minibatch // workers.count), workers=workers.count,
                               index=workers.index, local_replicas=self.steps.local_replicas,
                               accumulate=self.steps.accumulation(log2_int(resolution)))
        return iter(make_dataset(self.run_parts.data.path, resolution, minibatch, mirror=ds.mirror, seed=seed,
                                 shuffle_buffer=ds.shuffle_buffer, cache=ds.cache, keep=keep, skip=skip,
                                 labels=self.run_parts.labels is not None))

    def _train(self, bar: _KimgBar) -> Path | None:
        run = _Pass(start=time.time() - self.state.elapsed)
        while True:
            tick = self._run_tick(run, bar)
            started = time.time()
            for action in self.actions:
                if action.due(tick):
                    action(tick)
            run.maintenance = time.time() - started
            if tick.done:
                self._log_stop(tick)
                return self.snapshots.last

    def _run_tick(self, run: _Pass, bar: _KimgBar) -> Tick:
        """Training steps until the tick's kimg is reached, a checkpoint is due or the run must stop; a tick
        whose losses or weights are not finite raises NonFiniteError (the run rolls back)."""
        s, state = self.cfg.schedule, self.state
        started, first_nimg = time.time(), state.tick_start_nimg
        sums: dict[str, float] = {}
        count = 0
        while True:
            sched = self._schedule()
            if (sched.resolution, sched.minibatch) != run.data_key:
                run.data_key = (sched.resolution, sched.minibatch)
                run.data = self._data_stream(sched)
            if s.reset_opt_for_new_lod and not math.isnan(state.prev_lod) and lod_changed(state.prev_lod,
                                                                                          sched.lod):
                self.steps.reset_optimizers()
            state.prev_lod = sched.lod
            lr_scale = state.lr_scale
            self.steps.set_learning_rates(sched.G_lrate * lr_scale, sched.D_lrate * lr_scale)
            stats, shown = self.steps.iteration(run.data, sched, s)
            state.nimg += shown
            crossed = self.checkpoints.interval_passed(state.nimg - shown)
            for out in stats:
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
            count += len(stats)
            bar.show(state.kimg)
            out_of_time = s.max_minutes is not None and time.time() - run.start >= s.max_minutes * 60
            out_of_time, checkpoint_due = self.signals.agree(out_of_time, crossed)
            done = state.nimg >= s.total_kimg * 1000 or out_of_time or self.signals.stop is not None
            # Where the uninterrupted run ends this tick too: its kimg reached, or a checkpoint due.
            tick_end = state.nimg >= first_nimg + sched.tick_kimg * 1000 or checkpoint_due
            if tick_end or done:
                break
        means = {k: v / count for k, v in sums.items()}
        if not all(np.isfinite(v) for v in means.values()) or not self._weights_finite():
            bad = ", ".join(f"{k}={v:.4g}" for k, v in means.items() if not np.isfinite(v))
            raise NonFiniteError(f"non-finite {bad or 'weights'}")
        now = time.time()
        state.elapsed = now - run.start
        interrupted = done and state.nimg < s.total_kimg * 1000 and not tick_end
        if not interrupted:
            state.tick += 1
            state.tick_start_nimg = state.nimg
        # A tick cut short (a stop signal, max_minutes) is continued by a resumed run under the same index, so
        # that its ticks, and what they write, fall where the uninterrupted run's do; a stop that comes at the
        # tick's own end ends it as the uninterrupted run does.
        return Tick(index=state.tick + interrupted, nimg=state.nimg, sched=sched, stats=means,
                    seconds=now - started, images=state.nimg - first_nimg, maintenance=run.maintenance,
                    done=done, checkpoint_due=checkpoint_due, out_of_time=out_of_time,
                    interrupted=interrupted)

    def _weights_finite(self) -> bool:
        variables = self.G.trainable_variables + self.D.trainable_variables
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

    def _log_stop(self, tick: Tick) -> None:
        if self.signals.stop is not None:
            log.warning("stopped by %s at %.1f kimg; continue with resume=latest",
                        self.signals.stop.name, tick.kimg)
        elif tick.out_of_time and tick.nimg < self.cfg.schedule.total_kimg * 1000:
            log.info("stopping at %.1f kimg: schedule.max_minutes=%s reached", tick.kimg,
                     self.cfg.schedule.max_minutes)
