"""Training checkpoints (for resuming): networks, optimizers, RNG and the run's counters, in TF's format."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

from stylegan_exp.nets.network import Network
from stylegan_exp.nets.weights import shapes_by_path
from stylegan_exp.snapshot import describe_mismatch

# Checkpoint variable → TrainState field. The names are the checkpoint format (from when the loop counted in
# variables), so older checkpoints still resume.
_COUNTERS = {"cur_nimg": ("nimg", tf.int64), "cur_tick": ("tick", tf.int64),
             "elapsed": ("elapsed", tf.float64), "wandb_id": ("wandb_id", tf.string),
             "lr_scale": ("lr_scale", tf.float64), "prev_lod": ("prev_lod", tf.float64),
             "data_start_nimg": ("data_start_nimg", tf.int64),
             "tick_start_nimg": ("tick_start_nimg", tf.int64)}



class CheckpointError(ValueError):
    """A checkpoint that cannot be found, read or restored into this run."""


@dataclass
class TrainState:
    """The run's counters as plain Python values; the checkpoint copies them in and out of its variables."""

    nimg: int = 0
    tick: int = 0
    elapsed: float = 0.0  # training seconds before this process started
    wandb_id: str = ""
    lr_scale: float = 1.0  # rollbacks after NaN/Inf multiply the learning rates by this
    # What makes a resumed run the uninterrupted one: the lod of the last step (optimizers reset when its
    # integer part changes; NaN: unknown, no reset), where the current data stream and tick began.
    prev_lod: float = -1.0
    data_start_nimg: int = 0
    tick_start_nimg: int = 0

    def restart_streams(self) -> None:
        """The data stream and tick start here, with no optimizer reset pending (old checkpoints)."""
        self.prev_lod, self.data_start_nimg, self.tick_start_nimg = math.nan, self.nimg, self.nimg

    @property
    def kimg(self) -> float:
        return self.nimg / 1000


class TrainCheckpoint:
    """Everything a resumed run needs (networks, optimizers, counters, RNG, fixed latents).

    With several workers every one must save (saving reads mirrored state collectively), but only the
    writer's files are kept: the others save into a temporary directory that is removed at once.
    """

    def __init__(self, directory: Path, state: TrainState, max_to_keep: int = 3, writer: bool = True,
                 **objects: Any) -> None:
        self.directory = Path(directory)
        self.state = state
        self.writer = writer
        self._counters = {key: tf.Variable(getattr(state, attr), dtype=dtype, trainable=False)
                          for key, (attr, dtype) in _COUNTERS.items()}
        self.objects = objects
        self.ckpt = tf.train.Checkpoint(**objects, **self._counters)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(self.directory), max_to_keep=max_to_keep)

    def save(self) -> str:
        for key, (attr, _) in _COUNTERS.items():
            self._counters[key].assign(getattr(self.state, attr))
        number = self.state.nimg
        if self.writer:
            return self.manager.save(checkpoint_number=number)
        with tempfile.TemporaryDirectory(prefix="stylegan-exp-worker-checkpoint-") as scratch:
            tf.train.CheckpointManager(self.ckpt, scratch, max_to_keep=1).save(checkpoint_number=number)
        return str(self.directory / f"ckpt-{number}")

    def restore(self, directory: Path) -> str:
        """Restore from the latest checkpoint in `directory` (or a checkpoint prefix) into the networks,
        optimizers and `state`; one that does not fit them is a CheckpointError naming what differs (the run
        must then stop: some of its variables may hold the checkpoint's values)."""
        directory = Path(directory)
        prefix = tf.train.latest_checkpoint(str(directory)) if directory.is_dir() else str(directory)
        if not prefix:
            raise CheckpointError(f"no checkpoint found in {directory}")
        try:
            stored = dict(tf.train.list_variables(prefix))
        except (tf.errors.OpError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {prefix} is unreadable: {str(exc).splitlines()[0]}") from None
        networks = self._network_shapes()
        kinds = {key.split("/", 1)[0] for key in networks}
        differences = describe_mismatch(
            {k.removesuffix(_SUFFIX): tuple(v) for k, v in stored.items()
             if k.endswith(_SUFFIX) and k.split("/", 1)[0] in kinds}, networks)
        if differences:
            raise CheckpointError(f"checkpoint {prefix} does not fit this run's networks: {differences}")
        status = self.ckpt.restore(prefix)
        status.expect_partial()  # the run's own state objects may be a subset (e.g. no augmentation)
        try:
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {prefix} does not fit this run: "
                                f"{str(exc).splitlines()[0][:300]}") from None
        for key, (attr, _) in _COUNTERS.items():
            value = self._counters[key].numpy()
            value = value.decode() if isinstance(value, bytes) else value
            setattr(self.state, attr, type(getattr(self.state, attr))(value))
        if not any(k.startswith("data_start_nimg/") for k in stored):  # written before exact resume
            self.state.restart_streams()
        return prefix

    def _network_shapes(self) -> dict[str, tuple[int, ...]]:
        """`G/<variable path>` → shape of every network variable (the networks among its objects)."""
        return {f"{name}/{path}": shape for name, net in self.objects.items() if isinstance(net, Network)
                for path, shape in shapes_by_path(net).items()}


_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
