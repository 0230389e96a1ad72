"""The original StyleGAN training schedule as pure functions, so every number is unit-testable."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from stylegan_exp.resolution import log2_int

DEFAULT_TICK_KIMG = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}


@dataclass(frozen=True)
class ScheduleParams:
    """Everything `training_schedule` needs; mirrors the original `sched_args` plus the GPU preset."""

    max_resolution: int
    num_gpus: int = 1
    lod_initial_resolution: int = 4
    lod_training_kimg: float = 600.0
    lod_transition_kimg: float = 600.0
    minibatch_base: int = 16
    minibatch_dict: Mapping[int, int] | None = None
    max_minibatch_per_gpu: Mapping[int, int] | None = None
    G_lrate_base: float = 0.001
    G_lrate_dict: Mapping[int, float] | None = None
    D_lrate_base: float = 0.001
    D_lrate_dict: Mapping[int, float] | None = None
    lrate_rampup_kimg: float = 0.0
    tick_kimg_base: float = 160.0
    tick_kimg_dict: Mapping[int, float] | None = None


@dataclass(frozen=True)
class ScheduleState:
    """The training parameters in force at one point of training."""

    kimg: float
    lod: float
    resolution: int
    minibatch: int
    G_lrate: float
    D_lrate: float
    tick_kimg: float

    @property
    def level(self) -> int:
        """log2 of the resolution the networks are traced at."""
        return int(math.log2(self.resolution))

    @property
    def fade(self) -> float:
        """Weight of the lower level during a fade-in (0 = only the new, full-resolution level)."""
        return self.lod - math.floor(self.lod)


def training_schedule(cur_nimg: int, p: ScheduleParams) -> ScheduleState:
    """Evaluate the schedule at `cur_nimg` images shown, exactly as `training_schedule` in the original."""
    kimg = cur_nimg / 1000.0
    phase_dur = p.lod_training_kimg + p.lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur

    res_log2 = log2_int(p.max_resolution)
    lod = float(res_log2)
    lod -= math.floor(math.log2(p.lod_initial_resolution))
    lod -= phase_idx
    if p.lod_transition_kimg > 0:
        lod -= max(phase_kimg - p.lod_training_kimg, 0.0) / p.lod_transition_kimg
    lod = max(lod, 0.0)
    resolution = 2 ** (res_log2 - int(math.floor(lod)))

    minibatch = (p.minibatch_dict or {}).get(resolution, p.minibatch_base)
    minibatch -= minibatch % p.num_gpus
    cap = (p.max_minibatch_per_gpu or {}).get(resolution)
    if cap is not None:
        minibatch = min(minibatch, cap * p.num_gpus)

    G_lrate = (p.G_lrate_dict or {}).get(resolution, p.G_lrate_base)
    D_lrate = (p.D_lrate_dict or {}).get(resolution, p.D_lrate_base)
    if p.lrate_rampup_kimg > 0:
        rampup = min(kimg / p.lrate_rampup_kimg, 1.0)
        G_lrate *= rampup
        D_lrate *= rampup

    tick_dict = DEFAULT_TICK_KIMG if p.tick_kimg_dict is None else p.tick_kimg_dict
    tick_kimg = tick_dict.get(resolution, p.tick_kimg_base)
    return ScheduleState(
        kimg=kimg,
        lod=lod,
        resolution=resolution,
        minibatch=minibatch,
        G_lrate=float(G_lrate),
        D_lrate=float(D_lrate),
        tick_kimg=float(tick_kimg),
    )


def lod_changed(prev_lod: float, lod: float) -> bool:
    """True when new layers appear (the original's condition for resetting the optimizers)."""
    return math.floor(prev_lod) != math.floor(lod) or math.ceil(prev_lod) != math.ceil(lod)


def gs_beta(minibatch: int, G_smoothing_kimg: float) -> float:
    """EMA decay of Gs per step: weights half-decay every `G_smoothing_kimg` thousand images."""
    if G_smoothing_kimg <= 0:
        return 0.0
    return 0.5 ** (minibatch / (G_smoothing_kimg * 1000.0))
