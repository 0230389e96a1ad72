"""Hydra multirun: one job per swept value, each in its own run dir with its own fakes and wandb run."""

import subprocess
import sys

import pytest
from conftest import REPO, TINY
from hydra import compose, initialize_config_dir

from stylegan_exp.schemas import register_configs
from stylegan_exp.sweep import job_subdir, missing_launcher, swept_keys
from stylegan_exp.tracking import wandb_records


@pytest.mark.slow
def test_two_value_sweep_makes_two_runs(tiny_dataset, tmp_path):
    out = tmp_path / "outputs"
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *TINY, f"outputs_root={out}",
         f"dataset.path={tiny_dataset}", "schedule.total_kimg=0.1",
         "schedule.tick_kimg_base=0.05", "schedule.lod_training_kimg=10",
         "schedule.G_lrate_base=0.001,0.002"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (out / "tiny").glob("multirun-*")
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    # each job's folder and wandb run name say which value it had
    assert [p.name for p in jobs] == ["0-schedule.G_lrate_base=0.001", "1-schedule.G_lrate_base=0.002"]
    for job, lrate in zip(jobs, ("0.001", "0.002"), strict=True):
        assert f"G_lrate_base: {lrate}" in (job / "config.yaml").read_text()
        assert len(list(job.glob("fakes*.png"))) >= 1 and (job / "metrics.jsonl").is_file()
        (wandb_file,) = (job / "wandb").glob("offline-run-*/run-*.wandb")
        runs = [r.run for r in wandb_records(wandb_file) if r.WhichOneof("record_type") == "run"]
        assert runs and runs[0].run_group == f"tiny/{sweep_dir.name}"  # grouped by sweep
        assert runs[0].display_name == f"tiny/{job.name}"


def test_job_folders_name_the_swept_values_only():
    swept = swept_keys(["+experiment=tiny", "dataset.path=/data/faces", "model.r1_gamma=1,10",
                        "seed=range(2)"])
    assert swept == {"model.r1_gamma", "seed"}
    job = ["+experiment=tiny", "dataset.path=/data/faces", "model.r1_gamma=10", "seed=1"]
    assert job_subdir(3, job, swept) == "3-model.r1_gamma=10,seed=1"
    assert job_subdir(0, ["dataset.path=/a/b", "x=1"], {"dataset.path"}) == "0-dataset.path=_a_b"
    assert job_subdir(2, job, set()) == "2"


def test_a_launcher_without_its_plugin_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("hydra_plugins") else real(name, *a))
    assert missing_launcher(["-m", "hydra/launcher=parallel", "seed=1,2"]) == (
        'error: hydra/launcher=parallel needs its plugin: pip install -e ".[joblib]"')
    assert missing_launcher(["hydra/launcher=slurm"]).endswith('pip install -e ".[slurm]"')
    assert missing_launcher(["seed=1,2"]) is None


@pytest.mark.parametrize("launcher", ["basic", "parallel", "slurm"])
def test_launchers_compose(launcher):
    """A sweep moves from this machine to parallel jobs or a cluster by one override."""
    if launcher != "basic":
        pytest.importorskip({"parallel": "hydra_plugins.hydra_joblib_launcher",
                             "slurm": "hydra_plugins.hydra_submitit_launcher"}[launcher])
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}", "gpus=4gpu"],
                      return_hydra_config=True)
    expected = {"basic": "BasicLauncher", "parallel": "JoblibLauncher", "slurm": "SlurmLauncher"}[launcher]
    assert cfg.hydra.launcher._target_.endswith(expected)
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 4
