"""tf.distribute for the `gpus` presets: which strategy, how variables live on it, the workers of a run
(how a batch splits over replicas is `steps.replicas`)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from stylegan_exp.config import Strategy
from stylegan_exp.nets.compiled import graph_function


class ClusterError(RuntimeError):
    """The cluster this process was started in cannot be read."""


def make_strategy(name: Strategy, devices: Sequence[str] = (),
                  port_base: int = 8888) -> tf.distribute.Strategy:
    """`multiworker` reads the cluster from SLURM inside a Slurm job step, else from TF_CONFIG.

    Must run before any other TensorFlow op: collective ops are configured at program start.
    """
    if name not in Strategy.__members__.values():
        raise ValueError(f"gpus.strategy must be one of {[s.value for s in Strategy]}, got {name!r}")
    strategy = Strategy(name)
    if strategy == Strategy.default:
        return tf.distribute.get_strategy()
    if strategy == Strategy.mirrored:
        return tf.distribute.MirroredStrategy(list(devices) or None)
    resolver = (slurm_cluster(os.environ, port_base) if "SLURM_STEP_NUM_TASKS" in os.environ
                else tf.distribute.cluster_resolver.TFConfigClusterResolver())
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def tasks_per_node(spec: str) -> list[int]:
    """Slurm's compressed SLURM_STEP_TASKS_PER_NODE, e.g. "2(x3),1" → [2, 2, 2, 1]."""
    counts = []
    for item in spec.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item.strip())
        if not match:
            raise ValueError(f"cannot read SLURM_STEP_TASKS_PER_NODE={spec!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def slurm_addresses(hosts: Sequence[str], tasks: Sequence[int], port_base: int) -> list[str]:
    """host:port of every task in rank order: Slurm's default block distribution fills each node's tasks
    in turn, and a node's k-th task listens on port_base + k."""
    if len(hosts) != len(tasks):
        raise ValueError(f"{len(hosts)} nodes but tasks per node for {len(tasks)}: {list(tasks)}")
    return [f"{host}:{port_base + k}" for host, n in zip(hosts, tasks, strict=True) for k in range(n)]


def slurm_cluster(env: Mapping[str, str], port_base: int) -> tf.distribute.cluster_resolver.ClusterResolver:
    """The job step's tasks as workers, from SLURM_* and `scontrol show hostnames`.

    TensorFlow's SlurmClusterResolver asks nvidia-smi for GPUs (so it fails on CPU nodes), sorts the
    hosts rather than following the ranks' placement and fixes the port; here the GPUs are those this
    task sees, ranks follow the node list, and the port comes from the config.
    """
    try:
        listed = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_STEP_NODELIST"]],
                                capture_output=True, text=True, check=True).stdout.split()
        rank, count = int(env["SLURM_PROCID"]), int(env["SLURM_STEP_NUM_TASKS"])
        addresses = slurm_addresses(listed, tasks_per_node(env["SLURM_STEP_TASKS_PER_NODE"]), port_base)
    except (KeyError, OSError, subprocess.CalledProcessError, ValueError) as exc:
        raise ClusterError(f"cannot read this Slurm job step's layout: {exc}") from exc
    if len(addresses) != count:
        raise ClusterError(f"SLURM_STEP_NUM_TASKS={count} but the nodes list {len(addresses)} tasks")
    node = env.get("SLURMD_NODENAME")
    if node and addresses[rank].rsplit(":", 1)[0] != node:
        raise ClusterError(f"task {rank} runs on {node}, not {addresses[rank]}: launch with the default "
                           "block distribution (srun --distribution=block)")
    return tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec({"worker": addresses}), task_type="worker", task_id=rank,
        num_accelerators={"GPU": len(tf.config.list_physical_devices("GPU"))})



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


class WorkerGroup:
    """The processes training one run, and what they must agree on.

    Under MultiWorkerMirroredStrategy every worker runs the same loop, because reading sync-on-read state
    (w_avg, fixed noise) and saving a checkpoint are collectives that all workers must join; only the
    chief writes files and talks to trackers. Decisions taken from a worker's own clock or signals
    (max_minutes, checkpoint_minutes, SIGTERM) are agreed through `any_of` before anyone acts on them,
    else the workers' collectives would stop matching and the run would hang.
    """

    TEXT_BYTES = 4096

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        self.strategy = strategy
        self.index, self.count = _worker_position(getattr(strategy, "cluster_resolver", None))
        self.is_chief = self.index == 0
        self._summed = graph_function(self._sum_over_replicas)

    def _sum_over_replicas(self, values: tf.Tensor, chief_only: bool) -> tf.Tensor:
        def replica() -> tf.Tensor:
            ctx = tf.distribute.get_replica_context()
            mine = tf.identity(values)  # placed on the replica: a captured tensor has no destination
            if chief_only:  # global replica 0 lives on the chief
                mine = tf.where(ctx.replica_id_in_sync_group == 0, mine, tf.zeros_like(mine))
            return ctx.all_reduce(tf.distribute.ReduceOp.SUM, mine)

        return self.strategy.experimental_local_results(self.strategy.run(replica))[0]

    def any_of(self, flags: Sequence[bool]) -> list[bool]:
        """Each flag is true on every worker if it is true on any (one small all-reduce)."""
        if self.count == 1:
            return list(flags)
        summed = self._summed(tf.constant(np.asarray(flags, np.float32)), False).numpy()
        return [bool(v > 0) for v in summed]

    def from_chief(self, text: str) -> str:
        """The chief's value of `text` on every worker (run dir, resume source)."""
        if self.count == 1:
            return text
        data = text.encode()
        if len(data) > self.TEXT_BYTES:
            raise ValueError(f"cannot share {text[:80]!r}…: longer than {self.TEXT_BYTES} bytes")
        padded = np.zeros(self.TEXT_BYTES, np.int32)
        padded[: len(data)] = np.frombuffer(data, np.uint8)
        summed = self._summed(tf.constant(padded), True).numpy()
        return bytes(summed[summed > 0].astype(np.uint8)).decode()

    def barrier(self) -> None:
        """Wait until every worker gets here (e.g. the chief has made the dataset)."""
        self.any_of([False])


def _worker_position(resolver: Any) -> tuple[int, int]:
    """(index, count) of this worker, chief first as MultiWorkerMirroredStrategy orders replicas."""
    spec = resolver.cluster_spec() if resolver is not None else None
    if spec is None or not spec.jobs:
        return 0, 1
    chiefs = spec.num_tasks("chief") if "chief" in spec.jobs else 0
    workers = spec.num_tasks("worker") if "worker" in spec.jobs else 0
    index = resolver.task_id + (chiefs if resolver.task_type == "worker" else 0)
    return index, chiefs + workers
