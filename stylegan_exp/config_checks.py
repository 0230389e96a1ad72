"""Value ranges of a typed training config, checked at start-up so that a value that cannot work is one line
naming its key before any work, not a ZeroDivisionError or a silent no-op hours into a run."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from stylegan_exp.config import ConfigError, TrainConfig

# (dotted key, what must hold, how to say it); keys a model does not have are skipped.
_RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("schedule.total_kimg", lambda v: v >= 0, ">= 0"),
    ("schedule.lod_initial_resolution", lambda v: v >= 4 and math.log2(v).is_integer(),
     "a power of two >= 4"),
    ("schedule.lod_training_kimg", lambda v: v >= 0, ">= 0"),
    ("schedule.lod_transition_kimg", lambda v: v >= 0, ">= 0"),
    ("schedule.tick_kimg_base", lambda v: v > 0, "> 0"),
    ("schedule.G_smoothing_kimg", lambda v: v >= 0, ">= 0"),
    ("schedule.D_repeats", lambda v: v >= 1, ">= 1"),
    ("schedule.minibatch_repeats", lambda v: v >= 1, ">= 1"),
    ("schedule.accumulate", lambda v: v >= 1, ">= 1"),
    ("schedule.image_snapshot_ticks", lambda v: v >= 1, ">= 1"),
    ("schedule.network_snapshot_ticks", lambda v: v >= 1, ">= 1"),
    ("schedule.max_minutes", lambda v: v is None or v > 0, "> 0 (or null)"),
    ("gpus.num_gpus", lambda v: v >= 1, ">= 1"),
    ("gpus.minibatch_base", lambda v: v >= 1, ">= 1"),
    ("train.checkpoint_kimg", lambda v: v > 0, "> 0"),
    ("train.checkpoint_minutes", lambda v: v > 0, "> 0"),
    ("train.keep_checkpoints", lambda v: v >= 1, ">= 1"),
    ("train.max_restarts", lambda v: v >= 0, ">= 0"),
    ("train.max_rollbacks", lambda v: v >= 0, ">= 0"),
    ("train.rollback_lr_factor", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("grid.width", lambda v: v >= 1, ">= 1"),
    ("grid.height", lambda v: v >= 1, ">= 1"),
    ("metrics.interval_ticks", lambda v: v >= 1, ">= 1"),
    ("metrics.balance.patience_ticks", lambda v: v >= 1, ">= 1"),
    ("transfer.resume_kimg", lambda v: v >= 0, ">= 0"),
    ("transfer.freeze_d", lambda v: v >= 0, ">= 0"),
    ("augment.p", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("augment.interval", lambda v: v >= 1, ">= 1"),
    ("augment.ada_kimg", lambda v: v > 0, "> 0"),
    ("model.style_mixing_prob", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("model.dlatent_avg_beta", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("model.r1_gamma", lambda v: v >= 0, ">= 0"),
    ("model.mapping_layers", lambda v: v >= 1, ">= 1"),
    ("model.mbstd_group_size", lambda v: v >= 0, ">= 0"),
    ("model.g_reg_interval", lambda v: v >= 1, ">= 1"),
    ("model.d_reg_interval", lambda v: v >= 1, ">= 1"),
    ("model.pl_batch_shrink", lambda v: v >= 1, ">= 1"),
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
    for key, holds, must in _RULES:
        found, value = _get(cfg, key)
        if found and not holds(value):
            bad.append(f"{key}={value} (must be {must})")
    if bad:
        raise ConfigError(f"{'; '.join(bad)}")
