"""Network snapshots: the one format of this package for sampling, transfer and resuming from weights.

A snapshot is one `.npz`: every variable of G, D and Gs under `G/…`, `D/…`, `Gs/…` plus, as JSON, the
architecture and its model config (rebuilt by the architecture's schema, as stylegan2-ada keeps a network's
init kwargs in its pickle), the resolution (the short side), channels, kimg, lod, and for rectangles their
aspect (≠ 0 while growing: its networks run at
that level of detail, as the original's `lod` variable says). This module knows the file format only:
`stylegan_exp.models.load_snapshot` opens it, or a foreign format through an importer, into the same
`Snapshot`, and builds its networks.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stylegan_exp.atomic import atomic_open
from stylegan_exp.config import ConfigError, GpusConfig, ModelConfig, ScheduleConfig
from stylegan_exp.resolution import log2_int
from stylegan_exp.schedule import training_schedule

SNAPSHOT_PATTERN = "network-snapshot-*.npz"
_META_KEY = "__meta__"
OLDEST_ARCH = "stylegan"  # snapshots written before architectures were recorded
# (architecture, recorded values) → its typed model config
ModelConfigOf = Callable[[str, dict[str, Any]], ModelConfig]
# recorded labels ({"names", "groups"} or None) → the label space (data.dataset_format.LabelSpace) or None
LabelsOf = Callable[[Any], Any]


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
    aspect: str = "1:1"  # width:height of its images (stylegan_exp/aspect.py)
    labels: Any = None  # a conditional model's LabelSpace: what its label vector means (None: unconditional)

    @property
    def c_dim(self) -> int:
        return 0 if self.labels is None else self.labels.dim

    def __post_init__(self) -> None:
        top = log2_int(self.resolution) - 2
        if not 0.0 <= self.lod <= top:
            raise SnapshotError(f"{self.path} records lod {self.lod}, outside [0, {top}] for its "
                                f"{self.resolution}² networks")

    def subset(self, prefix: str) -> dict[str, np.ndarray]:
        """The weights of one network ('G', 'D' or 'Gs') without the prefix."""
        head = prefix + "/"
        return {k[len(head) :]: v for k, v in self.weights.items() if k.startswith(head)}


def snapshot_arrays(weights: dict[str, dict[str, np.ndarray]], *, model: ModelConfig, resolution: int,
                    num_channels: int, kimg: float, lod: float = 0.0,
                    aspect: str = "1:1", labels: Any = None) -> dict[str, np.ndarray]:
    """The networks' weights ({'G', 'D', 'Gs'} → variable path → array) and what is needed to rebuild
    them, as the arrays of a snapshot; a conditional model's `labels` (names and groups) too."""
    arrays = {f"{net}/{name}": array for net, found in weights.items() for name, array in found.items()}
    meta = {"arch": model.ARCH, "model": asdict(model), "resolution": resolution,
            "num_channels": num_channels, "kimg": kimg, "lod": lod}
    if aspect != "1:1":  # square snapshots stay what they were
        meta["aspect"] = aspect
    if labels is not None:
        meta["labels"] = {"names": list(labels.names), "groups": dict(labels.groups)}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    return arrays


def write_snapshot(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    with atomic_open(path) as f:
        np.savez(f, **arrays)
    return path


def read_snapshot(path: Path, model_config: ModelConfigOf, labels_of: LabelsOf = lambda recorded: None
                  ) -> Snapshot:
    """Our `.npz` snapshot; `model_config` types the recorded model config by its architecture, `labels_of`
    its recorded label space."""
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"network snapshot not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data[_META_KEY]))
            weights = {k: data[k] for k in data.files if k != _META_KEY}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise SnapshotError(f"{path} is not a readable network snapshot ({exc})") from exc
    try:
        model = model_config(meta.get("arch", OLDEST_ARCH), meta["model"])
    except (ConfigError, OmegaConfBaseException) as exc:
        raise SnapshotError(f"{path} records a model config this version cannot rebuild ({exc})") from exc
    try:
        labels = labels_of(meta.get("labels"))
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"{path} records labels this version cannot read ({exc})") from exc
    resolution, kimg = int(meta["resolution"]), float(meta["kimg"])
    lod = float(meta["lod"]) if "lod" in meta else _lod_from_run(path, kimg, resolution)
    return Snapshot(path, model, resolution, int(meta.get("num_channels", 3)), kimg, weights, lod,
                    str(meta.get("aspect", "1:1")), labels)


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


def shorten(names: list[str], limit: int = 6) -> str:
    """The first `limit` names, and how many more there are."""
    return ", ".join(names[:limit]) + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def describe_mismatch(found: dict[str, tuple[int, ...]], expected: dict[str, tuple[int, ...]],
                      limit: int = 5) -> str:
    """What keeps a set of named arrays (`found`) from fitting a network (`expected`), in one line ("" when it
    fits): the names it lacks, those it has in excess, and those of another shape."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(found) & set(expected) if tuple(found[k]) != tuple(expected[k]))
    problems = []
    if missing:
        problems.append(f"missing {shorten(missing, limit)}")
    if unexpected:
        problems.append(f"unexpected {shorten(unexpected, limit)}")
    if wrong:
        problems.append("shape mismatch " + ", ".join(
            f"{k} {tuple(found[k])} where the network has {tuple(expected[k])}" for k in wrong[:limit]))
    return "; ".join(problems)


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
