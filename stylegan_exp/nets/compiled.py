"""Networks run compiled for sampling, ranking and metrics: one trace per network, lod and batch shape.

Eager calls run the generator at a third of its compiled speed. Every batch is padded to the same size
(repeating its rows, which also keeps the discriminator's minibatch-stddev groups full) so the last, short
batch does not trace the function again; the padding is cut from the outputs.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow as tf

# network → {(function, lod): tf.function}. The compiled function holds its network weakly, so a network
# that is no longer used is freed with its traces.
_COMPILED: weakref.WeakKeyDictionary[tf.Module, dict[tuple[Callable[..., Any], float], Any]] = (
    weakref.WeakKeyDictionary())


def graph_function(fn: Callable[..., Any], *, jit_compile: bool = False, input_signature: list | None = None
                   ) -> Callable[..., Any]:
    """`fn` as a tf.function without AutoGraph. The networks, augmentations and steps branch on Python
    values only; converting each of their functions to AutoGraph took 11 of the 14 s of a StyleGAN2 + ADA
    G step's first call, in every process that trains, samples or exports."""
    return tf.function(fn, autograph=False, jit_compile=True if jit_compile else None,
                       input_signature=input_signature)


def compiled(net: tf.Module, fn: Callable[..., tf.Tensor]) -> Callable[..., tf.Tensor]:
    """`fn(net, *args)` as a tf.function, made once per network and lod (sampling traces the lod in)."""
    per_net = _COMPILED.setdefault(net, {})
    key = (fn, float(getattr(net, "lod", 0.0)))
    if key not in per_net:
        ref = weakref.ref(net)
        per_net[key] = graph_function(lambda *args: fn(ref(), *args))
    return per_net[key]


def padded_batches(rows: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """`rows` in chunks of exactly `batch_size` rows, the last one padded by repeating its own rows, each
    with the number of real rows in it."""
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        n = len(chunk)
        if n < batch_size:
            chunk = np.concatenate([chunk, chunk[np.arange(batch_size - n) % n]])
        yield chunk, n


def run_batched(fn: Callable[..., tf.Tensor], rows: np.ndarray, batch_size: int, *args: Any) -> np.ndarray:
    """`fn(batch, *args)` over `rows` in padded batches of `batch_size`, the padding cut off again."""
    out = [fn(tf.constant(chunk), *args).numpy()[:n] for chunk, n in padded_batches(rows, batch_size)]
    return np.concatenate(out)
