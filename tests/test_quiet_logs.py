"""A CPU-only user sees only our own log: no TensorFlow start-up notices, CUDA or grappler errors."""

import os
import re
import subprocess
import sys

import pytest
from conftest import REPO, SHARED_DATA, TINY

from stylegan_exp.tf_quiet import STARTUP_NOISE, filtered_stderr

TF_NOISE = re.compile(r"cuInit|remapper failed|oneDNN|absl::InitializeLog|cuda drivers|cpu_feature_guard"
                      r"|meta_optimizer|^[IWE]\d{4} ", re.MULTILINE)


def _run(script: str, *overrides: str, cwd) -> str:
    """The script's stderr, run with the environment a user has (no TF_CPP_MIN_LOG_LEVEL)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run([sys.executable, str(REPO / script), *overrides], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.mark.slow
def test_train_sample_prepare_print_no_tensorflow_noise(tmp_path):
    out = f"outputs_root={tmp_path / 'outputs'}"
    stderr = _run("train.py", *TINY, "schedule.total_kimg=0.05", "logger=none", out, cwd=tmp_path)
    stderr += _run("sample.py", "name=tiny", "seeds=[0,1]", out, cwd=tmp_path)
    if SHARED_DATA.is_dir():
        stderr += _run("prepare.py", f"source={SHARED_DATA / 'anime_faces_64'}", "stages=[pack]",
                       "run.limit=4", f"work_dir={tmp_path / 'work'}", f"dataset_dir={tmp_path / 'ds'}",
                       cwd=tmp_path)
    assert not TF_NOISE.search(stderr), TF_NOISE.search(stderr).group(0) + "\n" + stderr[-3000:]


def test_filtered_stderr_drops_only_the_noise(capfd):
    with filtered_stderr():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\nkept line\n")
    assert capfd.readouterr().err == "kept line\n"
    assert STARTUP_NOISE.search("WARNING: All log messages before absl::InitializeLog() is called")
