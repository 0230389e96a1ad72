"""tf.distribute for the `gpus` presets: which strategy, how variables live on it, how a batch splits.

A global minibatch is split into `parts` strided slices (part p = samples p, p + parts, …), one per
replica and accumulated micro-batch. Minibatch-stddev groups are strided the same way (sample i is in
group column i mod (N / group_size)), so when the group size divides the per-part batch every group
stays within one part and the split computation equals the whole-batch one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str, devices: Sequence[str] = ()) -> tf.distribute.Strategy:
    """`multiworker` reads the cluster from SLURM inside a Slurm job, else from TF_CONFIG.

    Must run before any other TensorFlow op: collective ops are configured at program start.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices) or None)
    if name == "multiworker":
        resolver = (tf.distribute.cluster_resolver.SlurmClusterResolver() if "SLURM_JOB_ID" in os.environ
                    else tf.distribute.cluster_resolver.TFConfigClusterResolver())
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    raise ValueError(f"gpus.strategy must be one of {STRATEGIES}, got {name!r}")


def _sync_on_read(next_creator: Callable[..., tf.Variable], **kwargs: Any) -> tf.Variable:
    """Non-trainable state (w_avg, fixed noise) is assigned inside the replicas; sync-on-read with MEAN lets
    each replica update its own copy without a merge_call, and reading it across replicas averages
    them, which equals the whole-batch moving average because the update is linear."""
    if kwargs.get("trainable") is False:
        kwargs["synchronization"] = tf.VariableSynchronization.ON_READ
        kwargs["aggregation"] = tf.VariableAggregation.MEAN
    return next_creator(**kwargs)


@contextlib.contextmanager
def network_scope(strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Build G, D and Gs in here so their variables are mirrored on every replica."""
    with strategy.scope(), tf.variable_creator_scope(_sync_on_read):
        yield


def part(x: tf.Tensor, index: tf.Tensor | int, parts: int) -> tf.Tensor:
    """Strided slice `index` of `parts` along the batch axis (see the module docstring for why strided)."""
    return x[index::parts] if parts > 1 else x


def replica_index() -> tf.Tensor | int:
    """This replica's index among all replicas of all workers (0 outside a strategy)."""
    return tf.distribute.get_replica_context().replica_id_in_sync_group
