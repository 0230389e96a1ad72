"""What the Hydra entry points hand their config to: type, resolve what a resume continues, record, run."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
from collections.abc import Sequence
from dataclasses import is_dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from stylegan_exp.config import ConfigError, ModelConfig, TrainConfig, to_object, write_config
from stylegan_exp.config_checks import check_values
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.images import ImageError
from stylegan_exp.gpu_plan import plan_lines, resolve_gpus
from stylegan_exp.metrics import MetricError
from stylegan_exp.snapshot import SnapshotError
from stylegan_exp.tracking import TrackingError
from stylegan_exp.train.checkpoint import CheckpointError
from stylegan_exp.train.distribute import ClusterError
from stylegan_exp.train.resume import load_run_config, resume_target, resumed_config, run_dir_of

log = logging.getLogger(__name__)

USER_ERRORS = (ConfigError, DatasetError, ImageError, SnapshotError, CheckpointError, MetricError,
               FileNotFoundError, ClusterError, TrackingError)


# What Hydra and a run that failed to start leave in a run directory: removed, so that a failed start is
# no run (and never the `latest` one).
_UNSTARTED = {".hydra", "train.log", "sample.log", "config.yaml", "metrics.jsonl", "reals.png", "wandb"}


def discard_unstarted(run_path: Path, cfg: DictConfig) -> None:
    """Remove a run directory that holds nothing a run made (no checkpoint, snapshot or sample), and the
    experiment folder (`<outputs_root>/<name>`) if that leaves it empty."""
    if not run_path.is_dir() or any(p.name not in _UNSTARTED and not p.name.startswith("fakes")
                                    for p in run_path.iterdir()):
        return
    shutil.rmtree(run_path, ignore_errors=True)
    experiment = Path(str(cfg.get("outputs_root", ""))) / str(cfg.get("name", ""))
    if run_path.parent.resolve() == experiment.resolve():
        with contextlib.suppress(OSError):
            experiment.rmdir()


def _command_line() -> list[str]:
    """The overrides the user typed (`model.fmap_max=16`, `model=small`, `+experiment=tiny` …)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _command_line_keys() -> frozenset[str]:
    """The keys the user set on the command line: `model.fmap_max=16` → "model.fmap_max", `model=small` →
    "model" (what a snapshot the run continues may not contradict)."""
    return frozenset(o.split("=", 1)[0].lstrip("+~") for o in _command_line())


def _default_composition() -> DictConfig | None:
    """The composition without any override, to tell what the command line changed."""
    if not HydraConfig.initialized():
        return None
    from hydra import compose

    return compose(config_name=HydraConfig.get().job.config_name)


def replace_dict_overrides(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The composition with each dict-valued knob the command line sets (`schedule.tick_kimg_dict={32: 2}`)
    exactly as typed: Hydra merges a dict override into the preset's dict key by key, so `={}` would change
    nothing and `={32: 2}` keep every other resolution's value."""
    cfg = cfg.copy()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override() or override.is_delete():
            continue
        value, node = override.value(), OmegaConf.select(cfg, override.key_or_group)
        plain_dict = isinstance(node, DictConfig) and not is_dataclass(OmegaConf.get_type(node))
        if isinstance(value, dict) and plain_dict:
            OmegaConf.update(cfg, override.key_or_group, value, merge=False)
    return cfg


def training_config(cfg: DictConfig, base: DictConfig | None = None,
                    overrides: Sequence[str] = ()) -> tuple[TrainConfig, Path | None]:
    """The typed run and what it resumes. A resumed run is the run it continues: the saved config.yaml of
    that run, with the command line's mid-run changes (`train.resume`); `base` is the composition without
    overrides (default: `cfg`, so only `overrides` count as changes)."""
    cfg = replace_dict_overrides(cfg, overrides)
    typed = to_object(cfg)
    check_values(typed)
    target = resume_target(typed)
    if target is None:
        return typed, None
    run_dir = run_dir_of(target)
    saved = run_dir / "config.yaml"
    if not saved.is_file():
        log.warning("%s has no config.yaml: resuming with the composition of this command line", run_dir)
        return typed, target
    effective, changes = resumed_config(cfg, cfg if base is None else base, load_run_config(saved),
                                        overrides, source=str(run_dir))
    log.info("resuming %s with its config.yaml%s", run_dir,
             "".join(f"; {line}" for line in changes) if changes else " as it was")
    typed = to_object(effective)
    check_values(typed)
    return typed, target


def _grouped_by_sweep(cfg: TrainConfig) -> TrainConfig:
    """One wandb group per sweep, unless the user named one."""
    sweeping = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if not sweeping or cfg.logger.group is not None:
        return cfg
    group = f"{cfg.name}/{Path(HydraConfig.get().sweep.dir).name}"
    return dataclasses.replace(cfg, logger=dataclasses.replace(cfg.logger, group=group))


def start_training(cfg: DictConfig, run_dir: str) -> Path | None:
    """Bad input ends the run with one line naming the culprit, before any work and leaving no run directory;
    a SIGINT/SIGTERM stop exits 128+signal after its checkpoint is written.

    With several workers the chief's run dir is everyone's (their Hydra clocks differ) and only the
    chief writes to it; the others keep their own Hydra log and log warnings only.
    """
    from stylegan_exp.train.builder import connect
    from stylegan_exp.train.loop import Trainer

    own_dir = Path(run_dir)
    try:
        typed, target = training_config(cfg, _default_composition(), _command_line())
        if typed.dry_run:
            discard_unstarted(own_dir, cfg)
            return _dry_run(typed)
        typed = resolve_gpus(_grouped_by_sweep(typed))
        workers = connect(typed)
        run_path = Path(workers.from_chief(run_dir))
        if workers.is_chief:
            if workers.count > 1:
                log.info("chief of %d workers, %d replicas in all", workers.count,
                         workers.strategy.num_replicas_in_sync)
        else:
            log.info("worker %d of %d: the chief writes this run's outputs to %s", workers.index + 1,
                     workers.count, run_path)
            logging.getLogger("stylegan_exp").setLevel(logging.WARNING)
        trainer = Trainer(typed, run_path, workers, explicit=_command_line_keys(), resume_from=target)
        snapshot = trainer.run()
    except USER_ERRORS as exc:
        discard_unstarted(own_dir, cfg)
        raise SystemExit(f"error: {exc}") from None
    except BaseException:
        discard_unstarted(own_dir, cfg)
        raise
    log.info("done: outputs in %s", run_path)
    if trainer.stop_signal is not None:
        raise SystemExit(128 + trainer.stop_signal)
    return snapshot


def _dry_run(cfg: TrainConfig) -> None:
    """The plan on stdout, exit 1 when a resolution does not fit (as the plan command)."""
    lines = plan_lines(cfg)
    print("\n".join(lines))
    if lines[-1].startswith("error:"):
        raise SystemExit(1)


def start_sampling(cfg: DictConfig, run_dir: str) -> list[Path]:
    """Run the configured task (`task=random|figures|video|rank|invert|edit|metrics|export|explore`);
    bad input ends it with one line naming the culprit, leaving no run directory.

    The truncation the user leaves unset is the snapshot's (`sample.truncation`): every other key is checked
    before the snapshot is opened; config.yaml records the values the task used."""
    from stylegan_exp.sample.generate import SampleError
    from stylegan_exp.sample.tasks import open_snapshot, preflight, run_task
    from stylegan_exp.sample.truncation import adopt_truncation

    run_path = Path(run_dir)
    try:
        preflight(to_object(adopt_truncation(cfg, ModelConfig(name="not opened yet"))))
        snap = open_snapshot(cfg.snapshot, cfg.outputs_root, cfg.name, cfg.full_network)
        cfg = adopt_truncation(cfg, snap.model)
        write_config(run_path, cfg)
        paths = run_task(to_object(cfg), snap, run_path)
    except (*USER_ERRORS, SampleError) as exc:
        discard_unstarted(run_path, cfg)
        raise SystemExit(f"error: {exc}") from None
    except BaseException:
        discard_unstarted(run_path, cfg)
        raise
    log.info("done: %d outputs in %s", len(paths), run_path)
    return paths
