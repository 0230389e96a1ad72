"""Network snapshots: the one format for sampling, transfer and resuming from weights.

A snapshot is one `.npz`: every variable of G, D and Gs under `G/…`, `D/…`, `Gs/…` plus, as JSON, the
architecture and its model config (rebuilt with `model_config`, as stylegan2-ada keeps a network's init
kwargs in its pickle), the resolution, channels, kimg and lod (≠ 0 while growing: its networks run at that
level of detail, as the original's `lod` variable says). Original `.pkl` snapshots (path or URL) are read by
`legacy` into the same `Snapshot`, so every consumer accepts either.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stylegan_exp.atomic import atomic_open
from stylegan_exp.config import (
    ConfigError,
    GpusConfig,
    ModelConfig,
    ScheduleConfig,
    StyleGANConfig,
    model_config,
)
from stylegan_exp.nets.build import build_discriminator, build_generator
from stylegan_exp.nets.layers import variables_by_path
from stylegan_exp.resolution import log2_int
from stylegan_exp.train.schedule import training_schedule

SNAPSHOT_PATTERN = "network-snapshot-*.npz"
_META_KEY = "__meta__"


class SnapshotError(ValueError):
    """A snapshot or checkpoint that cannot be found or does not fit the networks."""


@dataclass(frozen=True)
class Snapshot:
    path: Path
    model: ModelConfig
    resolution: int
    num_channels: int
    kimg: float
    weights: dict[str, np.ndarray]
    lod: float = 0.0

    def __post_init__(self) -> None:
        top = log2_int(self.resolution) - 2
        if not 0.0 <= self.lod <= top:
            raise SnapshotError(f"{self.path} records lod {self.lod}, outside [0, {top}] for its "
                                f"{self.resolution}² networks")

    def subset(self, prefix: str) -> dict[str, np.ndarray]:
        """The weights of one network ('G', 'D' or 'Gs') without the prefix."""
        head = prefix + "/"
        return {k[len(head) :]: v for k, v in self.weights.items() if k.startswith(head)}

    def network(self, which: str) -> tf.Module:
        """G, D or Gs built from the snapshot's own model config, holding its weights, running at its lod."""
        build = build_discriminator if which == "D" else build_generator
        net = build(self.model, self.resolution, self.num_channels)
        assign_weights(net, self.subset(which), f"{self.path} ({which})")
        net.lod = self.lod
        return net


def snapshot_arrays(networks: dict[str, tf.Module], *, model: ModelConfig, resolution: int,
                    num_channels: int, kimg: float, lod: float = 0.0) -> dict[str, np.ndarray]:
    """The networks' variables and what is needed to rebuild them, as the arrays of a snapshot."""
    arrays = {
        f"{prefix}/{name}": var.numpy()
        for prefix, net in networks.items()
        for name, var in variables_by_path(net).items()
    }
    meta = {"arch": model.ARCH, "model": asdict(model), "resolution": resolution,
            "num_channels": num_channels, "kimg": kimg, "lod": lod}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    return arrays


def write_snapshot(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with atomic_open(path) as f:
        np.savez(f, **arrays)
    return path


def save_snapshot(path: Path, networks: dict[str, tf.Module], *, model: ModelConfig, resolution: int,
                  num_channels: int, kimg: float, lod: float = 0.0) -> Path:
    """Atomically write the networks' variables and what is needed to rebuild them."""
    return write_snapshot(path, snapshot_arrays(networks, model=model, resolution=resolution,
                                                num_channels=num_channels, kimg=kimg, lod=lod))


def is_legacy_source(source: str | Path) -> bool:
    """An original `.pkl` (local or http(s)) rather than our `.npz`."""
    text = str(source)
    return text.endswith(".pkl") or re.match(r"^https?://", text) is not None


def load_snapshot(source: str | Path, cache_dir: str | Path | None = None) -> Snapshot:
    """Our `.npz` snapshot, or an original `.pkl` (path or URL, downloaded once to `cache_dir`)."""
    if is_legacy_source(source):
        from stylegan_exp.legacy import snapshot_from_pkl

        return snapshot_from_pkl(source, cache_dir)
    path = Path(source)
    if not path.is_file():
        raise SnapshotError(f"network snapshot not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META_KEY]))
            weights = {k: data[k] for k in data.files if k != _META_KEY}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"{path} is not a readable network snapshot ({exc})") from exc
    # Snapshots written before architectures were recorded are all StyleGAN.
    model = _model_of(path, meta.get("arch", StyleGANConfig.ARCH), meta["model"])
    resolution, kimg = int(meta["resolution"]), float(meta["kimg"])
    lod = float(meta["lod"]) if "lod" in meta else _lod_from_run(path, kimg, resolution)
    return Snapshot(path, model, resolution, int(meta.get("num_channels", 3)), kimg, weights, lod)


def _lod_from_run(path: Path, kimg: float, resolution: int) -> float:
    """Snapshots written before lods were recorded: the lod the schedule in the run's config.yaml gives at the
    snapshot's kimg (0, every layer, when there is no such config)."""
    run_config = path.parent / "config.yaml"
    if not run_config.is_file():
        return 0.0
    try:
        cfg = OmegaConf.load(run_config)
        schedule = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ScheduleConfig), cfg.schedule))
        gpus = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GpusConfig), cfg.gpus))
    except (OSError, OmegaConfBaseException) as exc:
        raise SnapshotError(f"{path} records no lod and its run's {run_config} is unreadable: {exc}") from exc
    return training_schedule(int(round(kimg * 1000)), schedule, gpus, resolution).lod


def _model_of(path: Path, arch: str, values: dict[str, Any]) -> ModelConfig:
    try:
        return model_config(arch, values)
    except (ConfigError, OmegaConfBaseException) as exc:
        raise SnapshotError(f"{path} records a model config this version cannot rebuild ({exc})") from exc


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
