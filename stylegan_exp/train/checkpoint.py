"""Network snapshots (for sampling and transfer) and training checkpoints (for resuming).

A network snapshot is one `.npz`: every variable of G, D and Gs under `G/…`, `D/…`, `Gs/…` plus
the model config, resolution and kimg as JSON, written to a temp file and renamed into place.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from stylegan_exp.atomic import atomic_open
from stylegan_exp.nets.layers import variables_by_path

SNAPSHOT_PATTERN = "network-snapshot-*.npz"
_META_KEY = "__meta__"


class SnapshotError(ValueError):
    """A snapshot or checkpoint that cannot be found or does not fit the networks."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    model: dict[str, Any]
    resolution: int
    num_channels: int
    kimg: float
    weights: dict[str, np.ndarray]

    def subset(self, prefix: str) -> dict[str, np.ndarray]:
        """The weights of one network ('G', 'D' or 'Gs') without the prefix."""
        head = prefix + "/"
        return {k[len(head) :]: v for k, v in self.weights.items() if k.startswith(head)}


def snapshot_name(kimg: float) -> str:
    """Named by whole kimg as the original (`cur_nimg // 1000`)."""
    return f"network-snapshot-{int(kimg * 1000) // 1000:06d}.npz"


def snapshot_arrays(networks: dict[str, tf.Module], *, model: dict[str, Any], resolution: int,
                    num_channels: int, kimg: float) -> dict[str, np.ndarray]:
    """The networks' variables and what is needed to rebuild them, as the arrays of a snapshot."""
    arrays = {
        f"{prefix}/{name}": var.numpy()
        for prefix, net in networks.items()
        for name, var in variables_by_path(net).items()
    }
    meta = {"model": model, "resolution": resolution, "num_channels": num_channels, "kimg": kimg}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    return arrays


def write_snapshot(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with atomic_open(path) as f:
        np.savez(f, **arrays)
    return path


def save_snapshot(path: Path, networks: dict[str, tf.Module], *, model: dict[str, Any], resolution: int,
                  num_channels: int, kimg: float) -> Path:
    """Atomically write the networks' variables and what is needed to rebuild them."""
    return write_snapshot(path, snapshot_arrays(networks, model=model, resolution=resolution,
                                                num_channels=num_channels, kimg=kimg))


def load_snapshot(path: str | Path) -> Snapshot:
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"network snapshot not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META_KEY]))
            weights = {k: data[k] for k in data.files if k != _META_KEY}
    except (OSError, ValueError, KeyError) as exc:
        raise SnapshotError(f"{path} is not a readable network snapshot ({exc})") from exc
    return Snapshot(path, meta["model"], int(meta["resolution"]), int(meta.get("num_channels", 3)),
                    float(meta["kimg"]), weights)


def assign_weights(net: tf.Module, weights: dict[str, np.ndarray], what: str) -> None:
    """Copy weights into a network, naming every missing, unexpected or mis-shaped variable."""
    variables = variables_by_path(net)
    missing = sorted(set(variables) - set(weights))
    unexpected = sorted(set(weights) - set(variables))
    wrong = sorted(k for k in set(variables) & set(weights) if tuple(variables[k].shape) != weights[k].shape)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}" + (" …" if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:5])}" + (" …" if len(unexpected) > 5 else ""))
    if wrong:
        problems.append("shape mismatch " + ", ".join(
            f"{k} {weights[k].shape}≠{tuple(variables[k].shape)}" for k in wrong[:5]))
    if problems:
        raise SnapshotError(f"{what} does not fit the network: {'; '.join(problems)}")
    for name, var in variables.items():
        var.assign(weights[name])


def _kimg_of(path: Path) -> int:
    match = re.search(r"(\d+)", path.stem.rsplit("-", 1)[-1])
    return int(match.group(1)) if match else -1


def latest_snapshot(run_dir: Path) -> Path | None:
    found = sorted(Path(run_dir).glob(SNAPSHOT_PATTERN), key=_kimg_of)
    return found[-1] if found else None


def find_latest(outputs_root: Path, experiment: str, what: str = "snapshot") -> Path:
    """The newest network snapshot (`what="snapshot"`) or checkpoint dir (`"checkpoint"`) of an experiment."""
    exp_dir = Path(outputs_root) / experiment
    if what == "snapshot":
        candidates = list(exp_dir.glob(f"**/{SNAPSHOT_PATTERN}"))
    else:
        candidates = [p.parent for p in exp_dir.glob("**/checkpoints/checkpoint")]
    if not candidates:
        raise SnapshotError(f"no {what} found for experiment '{experiment}' under {exp_dir}")
    return max(candidates, key=lambda p: p.stat().st_mtime)


class TrainCheckpoint:
    """Everything a resumed run needs (networks, optimizers, counters, RNG, fixed latents).

    With several workers every one must save (saving reads mirrored state collectively), but only the
    writer's files are kept: the others save into a temporary directory that is removed at once.
    """

    def __init__(self, directory: Path, max_to_keep: int = 3, writer: bool = True, **objects: Any) -> None:
        self.directory = Path(directory)
        self.writer = writer
        self.ckpt = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(self.directory), max_to_keep=max_to_keep)

    def save(self, kimg: float) -> str:
        number = int(round(kimg * 1000))
        if self.writer:
            return self.manager.save(checkpoint_number=number)
        with tempfile.TemporaryDirectory(prefix="stylegan-exp-worker-checkpoint-") as scratch:
            tf.train.CheckpointManager(self.ckpt, scratch, max_to_keep=1).save(checkpoint_number=number)
        return str(self.directory / f"ckpt-{number}")

    def restore(self, directory: Path) -> str:
        """Restore from the latest checkpoint in `directory` (or a checkpoint prefix)."""
        directory = Path(directory)
        prefix = tf.train.latest_checkpoint(str(directory)) if directory.is_dir() else str(directory)
        if not prefix:
            raise SnapshotError(f"no checkpoint found in {directory}")
        try:
            self.ckpt.restore(prefix).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as exc:
            raise SnapshotError(f"checkpoint {prefix} does not match this run's networks: {exc}") from exc
        return prefix
