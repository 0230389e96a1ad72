"""`model.precision=auto`: mixed bfloat16 when training on CPUs with bfloat16 hardware, else float32.

On such CPUs (x86 `avx512_bf16` or `amx_bf16`, Arm `bf16`) oneDNN runs the convolutions in bfloat16, faster
than float32, and a run reaches the same SWD at equal kimg (README, Benchmarks); GPUs and
older CPUs keep the original's float32.
"""

from __future__ import annotations

import logging
from pathlib import Path

import tensorflow as tf

from stylegan_exp.config import Precision

log = logging.getLogger(__name__)

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_has_bf16(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo's text lists a bfloat16 arithmetic flag."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and BF16_FLAGS & set(value.split()):
            return True
    return False


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no bfloat16 detection
        return ""


def resolve_precision(precision: Precision | str) -> Precision:
    """The precision a run computes in; `auto` is decided (and logged) from this machine's devices."""
    precision = Precision(precision)
    if precision != Precision.auto:
        return precision
    if tf.config.list_logical_devices("GPU"):
        chosen, why = Precision.float32, "training runs on GPUs"
    elif cpu_has_bf16(_read_cpuinfo()):
        chosen, why = Precision.mixed_bfloat16, "training runs on a CPU with bfloat16 hardware"
    else:
        chosen, why = Precision.float32, "this CPU has no bfloat16 hardware"
    log.info("model.precision=auto: %s (%s)", chosen, why)
    return chosen
