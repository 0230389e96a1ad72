"""Shared test helpers: the repo's paths, Hydra composition, running the entry points, the real test
images in ../shared/data, and quiet, offline TensorFlow/wandb. The original networks (pickles written in
their format, NumPy references of their forward pass) are in original_stylegan.py and original_stylegan2.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from stylegan_exp.data.prepare_config import register_prepare_configs
from stylegan_exp.schemas import register_configs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"
TINY = ["+experiment=tiny"]  # conf/experiment/tiny.yaml: seconds-long runs at 16²


def compose_config(name: str, *overrides: str) -> DictConfig:
    """conf/<name>.yaml composed with the overrides, as the entry point would see it."""
    register_configs()
    register_prepare_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides))


def run_script(script: str, *overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run train.py/sample.py/prepare.py as a user would; fails the test with its stderr if it fails."""
    proc = subprocess.run([sys.executable, str(REPO / script), *overrides], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The small real images beside the repo; tests that need them skip when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"test images not found at {SHARED_DATA}")
    return SHARED_DATA
