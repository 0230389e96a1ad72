"""The original StyleGAN training schedule as pure functions, so every number is unit-testable."""

from __future__ import annotations

import math
from dataclasses import dataclass

from stylegan_exp.config import GpusConfig, ScheduleConfig
from stylegan_exp.resolution import log2_int

# The original training_loop's tick_kimg_dict, which schedule/default.yaml sets; what `tick_kimg_dict: null`
# meant in config.yaml files written before it was a preset value.
ORIGINAL_TICK_KIMG = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}


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
    accumulate: int = 1  # micro-batches per replica at this resolution

    @property
    def level(self) -> int:
        """log2 of the resolution the networks are traced at."""
        return int(math.log2(self.resolution))

    @property
    def fade(self) -> float:
        """Weight of the lower level during a fade-in (0 = only the new, full-resolution level)."""
        return self.lod - math.floor(self.lod)


def training_schedule(cur_nimg: int, p: ScheduleConfig, gpus: GpusConfig,
                      max_resolution: int, growing: bool = True) -> ScheduleState:
    """Evaluate the schedule at `cur_nimg` images shown, exactly as `training_schedule` in the original.

    Minibatches are rounded to whole micro-batches per replica (`gpus.num_gpus × accumulation`). Without
    `growing` (StyleGAN2) lod is 0 throughout, as the StyleGAN2 original's `lod_initial_resolution=None`."""
    kimg = cur_nimg / 1000.0
    phase_dur = p.lod_training_kimg + p.lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur

    res_log2 = log2_int(max_resolution)
    lod = float(res_log2)
    lod -= math.floor(math.log2(p.lod_initial_resolution))
    lod -= phase_idx
    if p.lod_transition_kimg > 0:
        lod -= max(phase_kimg - p.lod_training_kimg, 0.0) / p.lod_transition_kimg
    lod = max(lod, 0.0) if growing else 0.0
    resolution = 2 ** (res_log2 - int(math.floor(lod)))

    accumulate = accumulation(resolution, p, gpus)
    parts = gpus.num_gpus * accumulate
    minibatch = gpus.minibatch_dict.get(resolution, gpus.minibatch_base)
    minibatch -= minibatch % parts
    cap = gpus.max_minibatch_per_gpu.get(resolution)
    if cap is not None:
        minibatch = min(minibatch, cap * parts)

    G_lrate = p.G_lrate_dict.get(resolution, p.G_lrate_base)
    D_lrate = p.D_lrate_dict.get(resolution, p.D_lrate_base)
    if p.lrate_rampup_kimg > 0:
        rampup = min(kimg / p.lrate_rampup_kimg, 1.0)
        G_lrate *= rampup
        D_lrate *= rampup

    tick_dict = p.tick_kimg_dict
    tick_kimg = tick_dict.get(resolution, p.tick_kimg_base)
    return ScheduleState(
        kimg=kimg,
        lod=lod,
        resolution=resolution,
        minibatch=minibatch,
        G_lrate=float(G_lrate),
        D_lrate=float(D_lrate),
        tick_kimg=float(tick_kimg),
        accumulate=accumulate,
    )


def accumulation(resolution: int, p: ScheduleConfig, gpus: GpusConfig) -> int:
    """Micro-batches each replica accumulates at `resolution`: gpus.accumulate_dict, else
    schedule.accumulate."""
    return gpus.accumulate_dict.get(resolution, p.accumulate)


def kimg_at_lod(lod: float, p: ScheduleConfig, max_resolution: int) -> float:
    """The first kimg at which the schedule reaches `lod` (the inverse of `training_schedule`'s lod): where a
    run continuing a snapshot saved at that lod starts."""
    initial = log2_int(max_resolution) - math.floor(math.log2(p.lod_initial_resolution))
    grown = max(initial - lod, 0.0)  # levels grown since the start, the last one partly
    phases = math.floor(grown)
    fade = grown - phases
    kimg = phases * (p.lod_training_kimg + p.lod_transition_kimg)
    if fade > 0:
        kimg += p.lod_training_kimg + fade * p.lod_transition_kimg
    return kimg


def lod_changed(prev_lod: float, lod: float) -> bool:
    """True when new layers appear (the original's condition for resetting the optimizers)."""
    return math.floor(prev_lod) != math.floor(lod) or math.ceil(prev_lod) != math.ceil(lod)


def gs_beta(minibatch: int, G_smoothing_kimg: float, rampup: float | None = None, nimg: int = 0) -> float:
    """EMA decay of Gs per step: weights half-decay every `G_smoothing_kimg` thousand images or, with
    `rampup` (stylegan2-ada's and StyleGAN3's ema_rampup), every `rampup × nimg` images while that is
    shorter, `nimg` being the images shown before this step (so Gs copies G at the first step)."""
    half_life = G_smoothing_kimg * 1000.0
    if rampup is not None:
        half_life = min(half_life, nimg * rampup)
    if half_life <= 0:
        return 0.0
    return 0.5 ** (minibatch / half_life)
