"""How a global minibatch splits over replicas, workers and accumulated micro-batches.

A global minibatch is split into `parts` strided slices (part p = samples p, p + parts, …), one per
replica and accumulated micro-batch. Minibatch-stddev groups are strided the same way (sample i is in
group column i mod (N / group_size)), so when the group size divides the per-part batch every group
stays within one part and the split computation equals the whole-batch one.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def part(x: tf.Tensor, index: tf.Tensor | int, parts: int) -> tf.Tensor:
    """Strided slice `index` of `parts` along the batch axis (see the module docstring for why strided)."""
    return x[index::parts] if parts > 1 else x


def worker_rows(positions: Any, *, workers: int, index: int, local_replicas: int, accumulate: int) -> Any:
    """Rows of the global batch that worker `index` holds at `positions` of its share (numpy or tf ints).

    The share is ordered so that its strided part `k * local_replicas + l` (micro-batch k of local
    replica l) is global part `k * replicas + index * local_replicas + l`, the part that replica trains
    on in the whole-batch split. So a worker reads, decodes and slices only its own rows, and the step
    equals the one that sees the whole batch.
    """
    replicas, local_parts = workers * local_replicas, local_replicas * accumulate
    j = positions % local_parts
    return ((positions // local_parts) * (replicas * accumulate) + (j // local_replicas) * replicas
            + index * local_replicas + j % local_replicas)


def replica_index() -> tf.Tensor | int:
    """This replica's index among all replicas of all workers (0 outside a strategy)."""
    return tf.distribute.get_replica_context().replica_id_in_sync_group
