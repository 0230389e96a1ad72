"""What `resume=latest|path` continues: the run a checkpoint belongs to, with that run's composition.

A resumed run is the run it continues. Its composition is the saved `config.yaml` of that run; the command
line may change only what can change mid-run (`MID_RUN`). Any other key the command line sets to a value
the run did not have is refused before any work, naming each key with both values, so that a resume never
trains something other than the run it names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stylegan_exp.config import ConfigError, ModelConfig, ResumeMode, TrainConfig
from stylegan_exp.data.dataset_format import INFO_FILE
from stylegan_exp.models import ARCHITECTURES
from stylegan_exp.schedule import ORIGINAL_TICK_KIMG
from stylegan_exp.snapshot import SnapshotError, find_latest

# Keys (and whole sections) a resumed run may change: when to stop, how often to write, what to log and
# measure, where the devices are; and the learning rates, which a user lowers to calm an unstable run.
MID_RUN = (
    "schedule.total_kimg", "schedule.max_minutes", "schedule.image_snapshot_ticks",
    "schedule.network_snapshot_ticks", "schedule.G_lrate_base", "schedule.D_lrate_base",
    "schedule.G_lrate_dict", "schedule.D_lrate_dict", "run", "logger", "metrics", "model.jit_compile",
    "dataset.cache", "gpus.devices", "gpus.port_base",
)
# Keys that say where the run goes and what it continues, not what it trains.
LOCATING = ("name", "outputs_root", "resume")

_ABSENT = object()


def _under(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def may_change_on_resume(key: str) -> bool:
    return _under(key, MID_RUN)


def resume_target(cfg: TrainConfig) -> Path | None:
    """The checkpoint directory, checkpoint prefix, run directory or network snapshot `resume` names."""
    r = cfg.resume
    if r.mode == ResumeMode.none:
        return None
    if r.mode == ResumeMode.path:
        if not r.path:
            raise ConfigError("resume=path needs resume.path=<run dir, checkpoints dir or snapshot .npz>")
        path = Path(r.path)
        if not path.exists() and not Path(f"{path}.index").exists():
            raise SnapshotError(f"resume.path={path} does not exist")
        if (path / "checkpoints").is_dir():
            return path / "checkpoints"
        return path
    return find_latest(Path(cfg.outputs_root), r.experiment or cfg.name, "checkpoint")


def run_dir_of(target: Path) -> Path:
    """The run directory a checkpoint dir, checkpoint prefix or snapshot belongs to."""
    if target.suffix == ".npz":
        return target.parent
    if target.name == "checkpoints":
        return target.parent
    if target.parent.name == "checkpoints":  # a checkpoint prefix: <run>/checkpoints/ckpt-N
        return target.parent.parent
    return target.parent


def run_history(target: Path, limit: int = 1000) -> list[Path]:
    """The run directories a checkpoint's run is made of, newest first: its own, then each one it resumed
    (the `resume.path` its config.yaml records), back to the start."""
    found: list[Path] = []
    while target is not None and len(found) < limit:
        run_dir = run_dir_of(target)
        if run_dir in found:
            break
        found.append(run_dir)
        config = run_dir / "config.yaml"
        earlier = OmegaConf.select(OmegaConf.load(config), "resume.path") if config.is_file() else None
        target = Path(earlier) if earlier else None
    return found


def earlier_outputs(target: Path) -> list[str]:
    """The periodic outputs' names (fakes grids, snapshots) a resumed run's earlier directories hold."""
    return sorted(p.name for run_dir in run_history(target)
                  for pattern in ("fakes*.png", "network-snapshot-*.npz") for p in run_dir.glob(pattern))


def model_schema(values: dict[str, Any]) -> type[ModelConfig]:
    """The registered architecture whose fields are the keys of a saved model config."""
    keys = set(values)
    for arch in ARCHITECTURES.values():
        if {f.name for f in dataclasses.fields(arch.config)} == keys:
            return arch.config
    raise ConfigError(f"the saved model config (name={values.get('name')!r}) matches no known architecture "
                      f"({', '.join(ARCHITECTURES)})")


def upgraded(saved: dict[str, Any]) -> dict[str, Any]:
    """A config.yaml written by an earlier version in today's terms: `train.*` → `run.*`, `metrics.names` →
    `metrics.kinds`, `metrics.balance` → `run.balance`, `schedule.tick_kimg_dict: null` → the original's."""
    saved = dict(saved)
    schedule = dict(saved.get("schedule") or {})
    if "tick_kimg_dict" in schedule and schedule["tick_kimg_dict"] is None:
        saved["schedule"] = schedule | {"tick_kimg_dict": dict(ORIGINAL_TICK_KIMG)}
    run = dict(saved.pop("train", None) or {}) | dict(saved.get("run") or {})
    metrics = dict(saved.get("metrics") or {})
    if "names" in metrics:
        metrics["kinds"] = metrics.pop("names")
    if "balance" in metrics:
        run["balance"] = metrics.pop("balance")
    if metrics:
        saved["metrics"] = metrics
    if run:
        saved["run"] = run
    return saved


def load_run_config(path: Path) -> DictConfig:
    """A run's saved config.yaml, typed against today's schema (its model by the architecture it names)."""
    try:
        raw = upgraded(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
        model = raw["model"]
        rest = {k: v for k, v in raw.items() if k != "model"}
        typed = OmegaConf.merge(OmegaConf.structured(TrainConfig), rest)
        typed.model = OmegaConf.merge(OmegaConf.structured(model_schema(model)), model)
    except (OSError, KeyError, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot read the resumed run's {path}: {str(exc).splitlines()[0]}") from None
    return typed


def leaves(cfg: DictConfig, prefix: str = "") -> dict[str, Any]:
    """Dotted key → resolved value for every field of the typed config; dict- and list-valued knobs and unset
    (None) sections are one leaf each."""
    out: dict[str, Any] = {}
    for key in cfg:
        node = cfg._get_node(key)
        path = f"{prefix}{key}"
        if isinstance(node, DictConfig) and not node._is_none() and not node._is_missing() and \
                dataclasses.is_dataclass(OmegaConf.get_type(node)):
            out.update(leaves(node, f"{path}."))
        elif OmegaConf.is_config(node) and not node._is_none():
            out[path] = OmegaConf.to_container(node, resolve=True, enum_to_str=True)
        else:
            value = cfg[key]
            out[path] = value.name if isinstance(value, Enum) else value
    return out


def _reported(key: str, theirs: dict[str, Any], composed: DictConfig) -> tuple[str, Any, Any]:
    """A key the saved run does not have because a section of it is unset is reported as that section."""
    parts = key.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        section = ".".join(parts[:depth])
        if section in theirs:
            value = OmegaConf.select(composed, section)
            mine = OmegaConf.to_container(value, resolve=True, enum_to_str=True) if OmegaConf.is_config(
                value) else value
            return section, theirs[section], mine
    return key, _ABSENT, _ABSENT


def _asserted(overrides: Sequence[str], keys: Iterable[str]) -> set[str]:
    """The leaves a command line names, directly (`model.r1_gamma=5`) or by group (`dataset=folder`)."""
    named = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "/" not in key and not key.startswith("hydra"):
            named.append(key)
    return {k for k in keys if _under(k, named)}


def _same_dataset(old: Any, new: Any) -> bool:
    """A moved dataset: both paths hold byte-identical dataset.json files (shard checksums included)."""
    a, b = Path(str(old)) / INFO_FILE, Path(str(new)) / INFO_FILE
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()


def _show(value: Any) -> str:
    return "unset" if value is _ABSENT else str(value)


def resumed_config(composed: DictConfig, base: DictConfig, saved: DictConfig, overrides: Sequence[str] = (),
                   source: str = "the run") -> tuple[DictConfig, list[str]]:
    """The saved run's config with the command line's mid-run changes, and one line per change.

    `composed` is what the command line composed, `base` the composition without any override: a key the
    command line changed is one where they differ or one it names. A changed key whose value differs from the
    saved run's is applied if it may change mid-run, else it is a ConfigError naming each such key."""
    mine, default, theirs = leaves(composed), leaves(base), leaves(saved)
    keys = set(mine) | set(default)
    changed = {k for k in keys if mine.get(k, _ABSENT) != default.get(k, _ABSENT)}
    changed |= _asserted(overrides, mine)
    effective = saved.copy()
    lines, conflicts = [], []
    for key in sorted(changed):
        if _under(key, LOCATING):
            continue
        new, old = mine.get(key, _ABSENT), theirs.get(key, _ABSENT)
        if new == old:
            continue
        if new is not _ABSENT and (may_change_on_resume(key)
                                   or key == "dataset.path" and _same_dataset(old, new)):
            OmegaConf.update(effective, key, new, merge=False)
            lines.append(f"{key}: {_show(old)} → {_show(new)} (from the command line)")
        else:
            if old is _ABSENT:
                key, old, new = _reported(key, theirs, composed)
            conflict = f"{key} (the run: {_show(old)}, the command line: {_show(new)})"
            if conflict not in conflicts:
                conflicts.append(conflict)
    if conflicts:
        raise ConfigError(
            f"resume continues {source} as its config.yaml says, and these keys cannot change mid-run: "
            f"{'; '.join(conflicts)}. Resume with only name=… resume=latest (plus any of "
            f"{', '.join(MID_RUN)})")
    for key in LOCATING:
        OmegaConf.update(effective, key, composed[key], merge=False)
    return effective, lines
