"""What the Hydra entry points hand their config to: resolve, record, type, then run."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from stylegan_exp.config import to_object

log = logging.getLogger(__name__)


def _prepare(cfg: DictConfig, run_dir: str) -> tuple[object, Path]:
    """Write the resolved config beside the outputs and make relative paths absolute to the launch dir."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("absl").setLevel(logging.WARNING)
    run_path = Path(run_dir)
    run_path.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_path / "config.yaml", resolve=True)
    return to_object(cfg), run_path


def start_training(cfg: DictConfig, run_dir: str) -> Path | None:
    from stylegan_exp.train.loop import train

    typed, run_path = _prepare(cfg, run_dir)
    snapshot = train(typed, run_path)
    log.info("done: outputs in %s", run_path)
    return snapshot


def start_sampling(cfg: DictConfig, run_dir: str) -> list[Path]:
    from stylegan_exp.sample.generate import sample

    typed, run_path = _prepare(cfg, run_dir)
    return sample(typed, run_path)
