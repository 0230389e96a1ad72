"""A run killed hard while it shared a wandb service (WANDB_SERVICE inherited from a parent that used wandb):
the service keeps the run id for as long as it lives, so the resume says so at once instead of waiting."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stylegan_exp.tracking import TrackingError, WandbTracker

HOLD_RUN = """
import sys, time, wandb
wandb.init(dir=sys.argv[1], mode="offline", project="p", id=sys.argv[2],
           settings=wandb.Settings(console="off"))
print("up", flush=True)
time.sleep(600)
"""


def test_a_run_held_by_an_inherited_service_is_one_line_naming_it(tmp_path: Path) -> None:
    import wandb

    wandb.setup()  # this process's service, announced to children through WANDB_SERVICE
    assert os.environ.get("WANDB_SERVICE")
    child = subprocess.Popen([sys.executable, "-c", HOLD_RUN, str(tmp_path), "held1234"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "up"
    finally:
        child.kill()
        child.wait()
    held = r"held1234 is held by the wandb service .*WANDB_SERVICE=.*unset it"
    with pytest.raises(TrackingError, match=held):
        WandbTracker(tmp_path / "resumed", mode="offline", project="p", name="n", config={},
                     run_id="held1234")
    assert not list((tmp_path / "resumed").glob("wandb/offline-run-*/*.wandb"))
