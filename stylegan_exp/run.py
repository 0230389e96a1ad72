"""What the Hydra entry points hand their config to: resolve, record, type, then run."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from stylegan_exp.config import ConfigError, to_object
from stylegan_exp.data.images import ImageError
from stylegan_exp.data.records import DatasetError
from stylegan_exp.metrics import MetricError
from stylegan_exp.train.checkpoint import SnapshotError

log = logging.getLogger(__name__)

USER_ERRORS = (ConfigError, DatasetError, ImageError, SnapshotError, MetricError, FileNotFoundError)


def _prepare(cfg: DictConfig, run_dir: str) -> tuple[object, Path]:
    """Write the resolved config beside the outputs and make relative paths absolute to the launch dir."""
    logging.getLogger("absl").setLevel(logging.WARNING)
    run_path = Path(run_dir)
    run_path.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_path / "config.yaml", resolve=True)
    return to_object(cfg), run_path


def start_training(cfg: DictConfig, run_dir: str) -> Path | None:
    """Bad input ends the run with one line naming the culprit; a SIGINT/SIGTERM stop exits 128+signal
    after its checkpoint is written."""
    from stylegan_exp.train.loop import Trainer

    typed, run_path = _prepare(cfg, run_dir)
    sweeping = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    if sweeping and typed.logger.group is None:  # one wandb group per sweep
        typed.logger.group = f"{typed.name}/{Path(HydraConfig.get().sweep.dir).name}"
    try:
        trainer = Trainer(typed, run_path)
        snapshot = trainer.run()
    except USER_ERRORS as exc:
        raise SystemExit(f"error: {exc}") from None
    log.info("done: outputs in %s", run_path)
    if trainer.stop_signal is not None:
        raise SystemExit(128 + trainer.stop_signal)
    return snapshot


def start_sampling(cfg: DictConfig, run_dir: str) -> list[Path]:
    """Run the configured task (`task=random|figures|video|rank|invert|edit`); bad input ends it with one
    line naming the culprit."""
    from stylegan_exp.sample.generate import SampleError
    from stylegan_exp.sample.tasks import run_task

    typed, run_path = _prepare(cfg, run_dir)
    try:
        paths = run_task(typed, run_path)
    except (*USER_ERRORS, SampleError) as exc:
        raise SystemExit(f"error: {exc}") from None
    log.info("done: %d outputs in %s", len(paths), run_path)
    return paths
