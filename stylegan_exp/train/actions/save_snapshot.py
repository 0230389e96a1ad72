"""Network snapshots (`network-snapshot-<kimg>.npz`: G, D, Gs and the model config) every
`schedule.network_snapshot_ticks` ticks and at the end of the run; optionally a wandb artifact."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from stylegan_exp.config import ModelConfig
from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.nets.network import Network
from stylegan_exp.nets.weights import weights_of
from stylegan_exp.snapshot import snapshot_arrays, write_snapshot
from stylegan_exp.tracking import Tracker
from stylegan_exp.train.actions import Tick
from stylegan_exp.train.checkpoint import TrainState
from stylegan_exp.train.output_names import OutputNames

log = logging.getLogger("stylegan_exp.train.loop")


class SaveSnapshot:
    def __init__(self, networks: dict[str, Network], model: ModelConfig, run_dir: Path, names: OutputNames,
                 state: TrainState, tracker: Tracker, due: Callable[[Tick], bool], *,
                 artifact: str | None = None, writer: bool = True, labels: LabelSpace | None = None) -> None:
        """`artifact`: the wandb artifact name to upload each snapshot as (None: no upload); `labels`: what
        a conditional model's labels mean, recorded in each snapshot."""
        self.labels = labels
        self.networks, self.model, self.run_dir, self.names = networks, model, run_dir, names
        self.state, self.tracker, self.due = state, tracker, due
        self.artifact, self.writer = artifact, writer
        self.last: Path | None = None

    def __call__(self, tick: Tick) -> None:
        self.write(tick.sched.lod, tick.interrupted)

    def write(self, lod: float, interrupted: bool = False) -> Path:
        gs = self.networks["Gs"]
        arrays = snapshot_arrays({k: weights_of(net) for k, net in self.networks.items()}, model=self.model,
                                 resolution=gs.resolution, num_channels=gs.num_channels, kimg=self.state.kimg,
                                 lod=lod, aspect=str(gs.aspect), labels=self.labels)
        path = self.run_dir / self.names.snapshot(self.state.nimg, interrupted)
        self.last = path
        if self.writer:
            write_snapshot(path, arrays)
            log.info("saved %s", path.name)
            if self.artifact:
                self.tracker.log_artifact(path, name=self.artifact, type="model")
        return path
