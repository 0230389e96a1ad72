"""A run killed hard while it shared a wandb service (WANDB_SERVICE inherited from a parent that used wandb):
the service keeps the run id for as long as it lives, so the resume says so at once instead of waiting.
(In a fresh process: a test process's wandb service may already be set up.)"""

import subprocess
import sys
from pathlib import Path

HOLD_RUN = """
import sys, time, wandb
wandb.init(dir=sys.argv[1], mode="offline", project="p", id=sys.argv[2],
           settings=wandb.Settings(console="off"))
print("up", flush=True)
time.sleep(600)
"""

PARENT = """
import os, subprocess, sys, wandb
from stylegan_exp.tracking import TrackingError, WandbTracker
wandb.setup()  # this process's service, announced to its children through WANDB_SERVICE
assert os.environ.get("WANDB_SERVICE")
child = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1], "held1234"],
                         stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == "up"
child.kill()
child.wait()
try:
    WandbTracker(os.path.join(sys.argv[1], "resumed"), mode="offline", project="p", name="n", config={},
                 run_id="held1234")
except TrackingError as err:
    print(err)
"""


def test_a_run_held_by_an_inherited_service_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", PARENT, str(tmp_path), HOLD_RUN], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = proc.stdout.strip().splitlines()
    assert line.startswith("wandb run held1234 is held by the wandb service this process inherited "
                           "(WANDB_SERVICE=") and line.endswith("): unset it, then resume again")
