"""`train.py dry_run=true`: the plan command's table from the composed run, no training and no run folder;
exit 1 when a resolution cannot fit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, TINY, run_script


@pytest.mark.slow
def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path, tiny_dataset):
    common = [*TINY, f"dataset.path={tiny_dataset}", f"outputs_root={tmp_path / 'out'}", "dry_run=true"]
    out = run_script("train.py", *common, cwd=tmp_path).stdout.splitlines()
    assert out[0].startswith("TensorFlow sees no GPU: planning for the CPU")
    assert out[1].startswith("gpus=cpu: 1 device(s)")
    assert "peak GB" in out[2] and out[3].startswith("   8²") and out[4].startswith("  16²")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
    too_small = ["gpus=1gpu", "gpus.memory_gb=0.0001"]
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *common, *too_small],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1].startswith("error: gpus=1gpu: at 8² even micro-batches of 16 need")
    assert not any((tmp_path / "out").rglob("*.npz"))
