"""Mixed precision: the compute dtype of each `model.precision`, running a network in it with float32
master weights, and `model.precision=auto`: mixed bfloat16 on CPUs with bfloat16 hardware, else float32.

On such CPUs (x86 `avx512_bf16` or `amx_bf16`, Arm `bf16`) oneDNN runs the convolutions in bfloat16, faster
than float32, and a run reaches the same SWD at equal kimg (README, Benchmarks); GPUs and
older CPUs keep the original's float32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf

from stylegan_exp.config import Precision

log = logging.getLogger(__name__)

COMPUTE_DTYPES: dict[Precision, tf.DType | None] = {
    Precision.float32: None,
    Precision.mixed_float16: tf.float16,
    Precision.mixed_bfloat16: tf.bfloat16,
}


@contextlib.contextmanager
def computing_in(module: tf.Module, dtype: tf.DType | None) -> Iterator[None]:
    """Run `module` in `dtype` with float32 master weights (mixed precision).

    The nets are plain tf.Modules that compute in their variables' dtype, so each trainable variable is
    swapped for its cast copy for the forward pass (gradients flow back through the cast) and put back.
    """
    if dtype is None:
        yield
        return
    swapped = []
    found = module._flatten(predicate=lambda v: isinstance(v, tf.Variable) and v.trainable, with_path=True)
    for path, var in found:
        owner = module
        for key in path[:-1]:
            owner = owner[key] if isinstance(key, int) else getattr(owner, key)
        swapped.append((owner, path[-1], var))
        setattr(owner, path[-1], tf.cast(var, dtype))
    try:
        yield
    finally:
        for owner, name, var in swapped:
            setattr(owner, name, var)

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
