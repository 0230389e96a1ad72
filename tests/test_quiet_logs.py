"""A CPU-only user sees only our own log: no TensorFlow start-up notices, CUDA or grappler errors."""

import os
import re

import pytest
from conftest import run_script, user_env

from stylegan_exp.tf_quiet import STARTUP_NOISE, filtered_stderr

TF_NOISE = re.compile(r"cuInit|remapper failed|oneDNN|absl::InitializeLog|cuda drivers|cpu_feature_guard"
                      r"|meta_optimizer|^[IWE]\d{4} ", re.MULTILINE)


def assert_quiet(stderr: str) -> None:
    assert not TF_NOISE.search(stderr), TF_NOISE.search(stderr).group(0) + "\n" + stderr[-3000:]


def test_train_and_sample_print_no_tensorflow_noise(stylegan_run, stylegan_samples):
    """The session's train.py run (with metrics and wandb) and sample.py, run with a user's environment."""
    assert_quiet(stylegan_run.stderr + stylegan_samples.stderr)


@pytest.mark.slow
def test_prepare_prints_no_tensorflow_noise(shared_data, tmp_path):
    stderr = run_script("prepare.py", f"source={shared_data / 'anime_faces_64'}", "stages=[pack]",
                        "run.limit=4", f"work_dir={tmp_path / 'work'}", f"dataset_dir={tmp_path / 'ds'}",
                        cwd=tmp_path, env=user_env()).stderr
    assert_quiet(stderr)


def test_filtered_stderr_drops_only_the_noise(capfd):
    with filtered_stderr():
        os.write(2, b"I0000 port.cc:153] oneDNN custom operations are on.\nkept line\n")
    assert capfd.readouterr().err == "kept line\n"
    assert STARTUP_NOISE.search("WARNING: All log messages before absl::InitializeLog() is called")
