"""Value ranges of a typed training config, checked at start-up so that a value that cannot work is one line
naming its key before any work, not a ZeroDivisionError or a silent no-op hours into a run."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from stylegan_exp.aspect import AspectError, parse_aspect
from stylegan_exp.config import ConfigError, TrainConfig


def _power_of_two(v: int) -> bool:
    return v >= 4 and math.log2(v).is_integer()


# What each key must be: (what must hold, how to say it) → the keys it applies to. A key a model does not
# have is skipped.
_RULES: list[tuple[Callable[[Any], bool], str, tuple[str, ...]]] = [
    (lambda v: v >= 0, ">= 0", (
        "schedule.total_kimg", "schedule.lod_training_kimg", "schedule.lod_transition_kimg",
        "schedule.G_smoothing_kimg", "run.max_restarts", "run.max_rollbacks", "transfer.resume_kimg",
        "transfer.freeze_d", "model.r1_gamma", "model.mbstd_group_size")),
    (lambda v: v >= 1, ">= 1", (
        "schedule.D_repeats", "schedule.minibatch_repeats", "schedule.accumulate",
        "schedule.image_snapshot_ticks", "schedule.network_snapshot_ticks", "gpus.num_gpus",
        "gpus.minibatch_base", "run.keep_checkpoints", "grid.width", "grid.height", "metrics.interval_ticks",
        "run.balance.patience_ticks", "augment.interval", "model.mapping_layers", "model.g_reg_interval",
        "model.d_reg_interval", "model.pl_batch_shrink")),
    (lambda v: v > 0, "> 0", (
        "schedule.tick_kimg_base", "run.checkpoint_kimg", "run.checkpoint_minutes", "augment.ada_kimg")),
    (lambda v: v is None or v > 0, "> 0 (or null)", ("schedule.max_minutes", "schedule.G_smoothing_rampup",
                                                      "model.label_mapping_lrmul")),
    (lambda v: v is None or v >= 0, ">= 0 (or null)", ("model.label_mapping_layers",)),
    (lambda v: 0 <= v <= 1, "in [0, 1]", ("augment.p", "model.style_mixing_prob", "model.dlatent_avg_beta")),
    (lambda v: 0 < v <= 1, "in (0, 1]", ("run.rollback_lr_factor",)),
    (_power_of_two, "a power of two >= 4", ("schedule.lod_initial_resolution",)),
]


def _get(cfg: Any, key: str) -> tuple[bool, Any]:
    node = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            return False, None
        node = getattr(node, part)
    return True, node


def check_values(cfg: TrainConfig) -> None:
    """Every out-of-range value, each named with what it must be, in one ConfigError."""
    bad = []
    for holds, must, keys in _RULES:
        for key in keys:
            found, value = _get(cfg, key)
            if found and not holds(value):
                bad.append(f"{key}={value} (must be {must})")
    bad += [f"gpus.accumulate_dict[{res}]={k} (must be >= 1)" for res, k in cfg.gpus.accumulate_dict.items()
            if k < 1]
    if bad:
        raise ConfigError(f"{'; '.join(bad)}")
    check_aspect(cfg)


def check_aspect(cfg: TrainConfig) -> None:
    """dataset.aspect is a supported ratio, and one the model can build."""
    try:
        aspect = parse_aspect(cfg.dataset.aspect)
    except AspectError as exc:
        raise ConfigError(str(exc)) from None
    if not aspect.square and cfg.model.ARCH == "stylegan3":
        raise ConfigError(f"dataset.aspect={aspect}: model=stylegan3 trains squares only (its synthesis "
                          "input is a square Fourier-feature grid with square filter margins); use "
                          "model=stylegan or model=stylegan2")
