"""What the Hydra entry points hand their config to: resolve, record, type, then run."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from stylegan_exp.config import ConfigError, to_object
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.images import ImageError
from stylegan_exp.metrics import MetricError
from stylegan_exp.snapshot import SnapshotError
from stylegan_exp.train.distribute import ClusterError

log = logging.getLogger(__name__)

USER_ERRORS = (ConfigError, DatasetError, ImageError, SnapshotError, MetricError, FileNotFoundError,
               ClusterError)


def _quiet_tensorflow() -> None:
    """TensorFlow's Python loggers report every collective and trace at INFO under Hydra's root logger."""
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _record(cfg: DictConfig, run_dir: str | Path) -> Path:
    """Write the resolved config beside the outputs."""
    run_path = Path(run_dir)
    run_path.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_path / "config.yaml", resolve=True)
    return run_path


def _command_line_keys() -> frozenset[str]:
    """The keys the user set on the command line: `model.fmap_max=16` → "model.fmap_max", `model=small` →
    "model" (what a snapshot the run continues may not contradict)."""
    if not HydraConfig.initialized():
        return frozenset()
    return frozenset(o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task)


def start_training(cfg: DictConfig, run_dir: str) -> Path | None:
    """Bad input ends the run with one line naming the culprit; a SIGINT/SIGTERM stop exits 128+signal
    after its checkpoint is written.

    With several workers the chief's run dir is everyone's (their Hydra clocks differ) and only the
    chief writes to it; the others keep their own Hydra log and log warnings only.
    """
    from stylegan_exp.train.loop import Trainer, connect

    _quiet_tensorflow()
    try:
        typed = to_object(cfg)
        workers = connect(typed)
        run_path = Path(workers.from_chief(run_dir))
        if workers.is_chief:
            _record(cfg, run_path)
            if workers.count > 1:
                log.info("chief of %d workers, %d replicas in all", workers.count,
                         workers.strategy.num_replicas_in_sync)
        else:
            log.info("worker %d of %d: the chief writes this run's outputs to %s", workers.index + 1,
                     workers.count, run_path)
            logging.getLogger("stylegan_exp").setLevel(logging.WARNING)
        sweeping = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        if sweeping and typed.logger.group is None:  # one wandb group per sweep
            typed.logger.group = f"{typed.name}/{Path(HydraConfig.get().sweep.dir).name}"
        trainer = Trainer(typed, run_path, workers, explicit=_command_line_keys())
        snapshot = trainer.run()
    except USER_ERRORS as exc:
        raise SystemExit(f"error: {exc}") from None
    log.info("done: outputs in %s", run_path)
    if trainer.stop_signal is not None:
        raise SystemExit(128 + trainer.stop_signal)
    return snapshot


def start_sampling(cfg: DictConfig, run_dir: str) -> list[Path]:
    """Run the configured task (`task=random|figures|video|rank|invert|edit|metrics|export`); bad input ends
    it with one line naming the culprit.

    The config is recorded as composed, then again once the snapshot is open and has filled in what the user
    left to it (the truncation), so config.yaml holds the values the task used."""
    from stylegan_exp.sample.generate import SampleError
    from stylegan_exp.sample.tasks import open_snapshot, run_task
    from stylegan_exp.sample.truncation import adopt_truncation

    _quiet_tensorflow()
    run_path = _record(cfg, run_dir)
    try:
        snap = open_snapshot(cfg.snapshot, cfg.outputs_root, cfg.name, cfg.full_network)
        cfg = adopt_truncation(cfg, snap.model)
        _record(cfg, run_path)
        paths = run_task(to_object(cfg), snap, run_path)
    except (*USER_ERRORS, SampleError) as exc:
        raise SystemExit(f"error: {exc}") from None
    log.info("done: %d outputs in %s", len(paths), run_path)
    return paths
