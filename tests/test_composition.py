"""A run is exactly what its composition says: resume continues the saved run, experiments compose cleanly,
every key is in the schema, failed starts leave nothing behind (issue 22)."""

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TINY, compose_config
from omegaconf import OmegaConf

from stylegan_exp.config import ConfigError, to_object, write_config
from stylegan_exp.run import training_config
from stylegan_exp.train.builder import warn_without_gpus
from stylegan_exp.train.checkpoint import CheckpointError
from stylegan_exp.train.loop import Trainer
from stylegan_exp.train.output_names import OutputNames
from stylegan_exp.train.resume import MID_RUN, leaves


def _fake_run(root: Path, name: str, *overrides: str) -> Path:
    """A run folder as train.py leaves it: its resolved config.yaml and a checkpoint to continue."""
    run = root / name / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-500"\n')
    write_config(run, to_object(compose_config("train", *overrides, f"name={name}", f"outputs_root={root}")))
    return run


def _resume(root: Path, *overrides: str):
    """What train.py resolves for these command-line overrides (base: the composition without any)."""
    overrides = (*overrides, f"outputs_root={root}")
    base = compose_config("train", f"outputs_root={root}")
    return training_config(compose_config("train", *overrides), base, overrides)


ORIGINAL = ("dataset=folder", "dataset.path=/data/faces", "dataset.resolution=32", "model=small",
            "augment=ada", "transfer.freeze_d=1", "schedule.total_kimg=100")


def test_resume_latest_continues_the_saved_composition(tmp_path, caplog):
    run = _fake_run(tmp_path, "faces", *ORIGINAL)
    with caplog.at_level(logging.INFO):
        cfg, target = _resume(tmp_path, "name=faces", "resume=latest")
    assert target == run / "checkpoints"
    saved = to_object(OmegaConf.load(run / "config.yaml"))  # a plain dict of the saved values
    assert (cfg.dataset.path, cfg.dataset.resolution, cfg.model.name, cfg.augment.kind) == (
        "/data/faces", 32, "small", "ada")
    assert cfg.transfer.freeze_d == 1 and cfg.dataset.synthetic is None
    assert cfg.model.fmap_base == saved["model"]["fmap_base"]
    assert "as it was" in caplog.text


def test_resume_refuses_what_cannot_change_mid_run_naming_both_values(tmp_path):
    _fake_run(tmp_path, "faces", *ORIGINAL)
    with pytest.raises(ConfigError) as err:
        _resume(tmp_path, *TINY, "name=faces", "resume=latest")
    message = str(err.value)
    assert "\n" not in message
    assert "dataset.resolution (the run: 32, the command line: 16)" in message
    assert ("dataset.path (the run: /data/faces, the command line: datasets/synthetic-16-n128-seed0)"
            in message)
    assert "model.fmap_base" in message and "augment.kind" not in message  # tiny says nothing of augment
    with pytest.raises(ConfigError, match=r"augment.kind \(the run: ada, the command line: none\)"):
        _resume(tmp_path, "name=faces", "resume=latest", "augment=none")
    with pytest.raises(ConfigError, match=r"transfer.freeze_d \(the run: 1, the command line: 0\)"):
        _resume(tmp_path, "name=faces", "resume=latest", "transfer.freeze_d=0")


def test_a_named_group_is_checked_even_when_it_is_the_default(tmp_path):
    """`dataset=synthetic` on the command line asks for the synthetic faces, which a folder run is not."""
    _fake_run(tmp_path, "faces", *ORIGINAL)
    with pytest.raises(ConfigError, match=r"dataset.name \(the run: folder, the command line: synthetic\)"):
        _resume(tmp_path, "name=faces", "resume=latest", "dataset=synthetic")


def test_resume_applies_mid_run_changes_and_says_so(tmp_path, caplog):
    _fake_run(tmp_path, "faces", *ORIGINAL)
    with caplog.at_level(logging.INFO):
        cfg, _ = _resume(tmp_path, "name=faces", "resume=latest", "schedule.total_kimg=150",
                         "schedule.G_lrate_base=0.0005", "run.checkpoint_minutes=5", "logger=none")
    s = cfg.schedule
    assert (s.total_kimg, s.G_lrate_base, cfg.run.checkpoint_minutes) == (150, 0.0005, 5)
    assert cfg.logger.mode.value == "disabled"
    assert "schedule.total_kimg: 100.0 → 150.0 (from the command line)" in caplog.text
    assert all(key.split(".")[0] in {"schedule", "run", "logger", "metrics", "model", "dataset", "gpus"}
               for key in MID_RUN)


def test_repeating_the_original_command_resumes(tmp_path):
    _fake_run(tmp_path, "tiny", *TINY, "model.fmap_max=8")
    cfg, _ = _resume(tmp_path, *TINY, "model.fmap_max=8", "resume=latest")
    assert cfg.model.fmap_max == 8


def test_resume_of_another_architecture_keeps_it(tmp_path):
    _fake_run(tmp_path, "sg2", *TINY, "model=stylegan2_small", "model.fmap_max=16", "model.latent_size=16",
              "model.dlatent_size=16", "model.mapping_fmaps=16")
    cfg, _ = _resume(tmp_path, "name=sg2", "resume=latest")
    assert cfg.model.ARCH == "stylegan2" and cfg.model.fmap_max == 16


def test_resume_path_accepts_a_run_directory(tmp_path):
    run = _fake_run(tmp_path, "faces", *ORIGINAL)
    cfg, target = _resume(tmp_path, "resume=path", f"resume.path={run}")
    assert target == run / "checkpoints" and cfg.dataset.path == "/data/faces"


def test_switching_dataset_drops_the_experiments_synthetic_block():
    cfg = to_object(compose_config("train", *TINY, "dataset=folder", "dataset.path=/data/faces"))
    assert cfg.dataset.name == "folder" and cfg.dataset.synthetic is None


def test_each_synthetic_configuration_has_its_own_folder():
    paths = {to_object(compose_config("train", *o)).dataset.path
             for o in [(), ("+experiment=demo",), TINY, ("dataset.synthetic.seed=3",)]}
    assert paths == {"datasets/synthetic-64-n4000-seed0", "datasets/synthetic-16-n128-seed0",
                     "datasets/synthetic-64-n4000-seed3"}


def test_tiny_is_seconds_long():
    cfg = to_object(compose_config("train", *TINY))
    assert cfg.schedule.total_kimg <= 5


def test_output_names_are_unique_at_any_tick_size():
    names = OutputNames()
    got = [names.snapshot(n) for n in (0, 256, 1000, 1024, 1280, 1280, 2000)]
    assert got[:3] == ["network-snapshot-000000.npz", "network-snapshot-000000_256.npz",
                       "network-snapshot-000001.npz"]
    assert got[3:] == ["network-snapshot-000001_024.npz", "network-snapshot-000001_280.npz",
                       "network-snapshot-000001_280.npz", "network-snapshot-000002.npz"]
    assert names.fakes(1024) == "fakes000001.png" and names.fakes(1280) == "fakes000001_280.png"


@pytest.mark.parametrize(("override", "named"), [
    ("+schedule.total_kimgg=2", "schedule.total_kimgg (did you mean schedule.total_kimg?)"),
    ("+model.fmap_bass=8", "model.fmap_bass (did you mean model.fmap_base?)"),
    ("+dataset.synthetic.cont=8", "dataset.synthetic.cont (did you mean dataset.synthetic.count?)"),
    ("+no_such_group_key=1", "no_such_group_key"),
])
def test_a_key_the_schema_does_not_have_is_refused(override, named):
    with pytest.raises(ConfigError) as err:
        to_object(compose_config("train", *TINY, override))
    assert str(err.value) == f"unknown config key {named}"


def test_a_missing_mandatory_value_names_the_key():
    with pytest.raises(ConfigError, match=r"^task.folder is not set: add task.folder=… to the command line$"):
        to_object(compose_config("sample", "task=rank", "truncation_psi=0.5", "truncation_cutoff=null"))


def test_every_mid_run_key_exists():
    keys = leaves(compose_config("train"))
    for key in MID_RUN:
        assert any(k == key or k.startswith(key + ".") for k in keys), key


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | {"HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize(("script", "args", "named"), [
    ("train.py", [*TINY, "+schedule.total_kimgg=2"], "schedule.total_kimgg"),
    ("sample.py", ["task=rank", "snapshot=nowhere.npz"], "task.folder"),
    ("train.py", [*TINY, "resume=latest", "name=never_ran"], "never_ran"),
    ("train.py", ["dataset=folder", "dataset.path={tmp_path}/nope", "logger=none"], "nope"),
])
def test_failed_starts_are_one_line_and_leave_no_run_directory(tmp_path, script, args, named):
    args = [arg.format(tmp_path=tmp_path) for arg in args]
    proc = _run(script, f"outputs_root={tmp_path / 'outputs'}", *args, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and lines == [lines[-1]], proc.stderr[-2000:]
    assert lines[-1].startswith("error:") and named in lines[-1]
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").rglob("*"))


@pytest.mark.slow
def test_readme_resume_continues_the_run_and_refuses_another_composition(tiny_dataset, tmp_path):
    """The issue's trap end to end: a folder-dataset run, resumed the README way, trains what it trained; a
    resume composed otherwise is one line before any work, and leaves `latest` as it was."""
    out, data = tmp_path / "outputs", tiny_dataset
    common = [f"outputs_root={out}", "logger=none", "schedule.lod_initial_resolution=16"]
    first = _run("train.py", *TINY, "name=faces", *common, f"dataset.path={data}", "schedule.total_kimg=0.1",
                 cwd=tmp_path)  # on the synthetic faces
    assert first.returncode == 0, first.stderr[-2000:]
    folder = _run("train.py", *TINY, "name=faces", *common, "dataset=folder", f"dataset.path={data}",
                  "model.fmap_max=8", "schedule.total_kimg=0.1", cwd=tmp_path)
    assert folder.returncode == 0, folder.stderr[-2000:]
    resumed = _run("train.py", "name=faces", "resume=latest", "schedule.total_kimg=0.2", *common,
                   cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "could not be found" not in resumed.stderr and "Traceback" not in resumed.stderr
    runs = sorted((out / "faces").iterdir())
    assert len(runs) == 3
    config = OmegaConf.load(runs[-1] / "config.yaml")
    assert (config.dataset.name, config.dataset.path, config.model.fmap_max) == ("folder", str(data), 8)
    assert config.schedule.total_kimg == 0.2
    assert "resumed from" in resumed.stdout and "at 0.1 kimg" in resumed.stdout
    refused = _run("train.py", *TINY, "name=faces", "resume=latest", *common, cwd=tmp_path)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1 and last.startswith("error:") and "dataset.name" in last
    assert "model.fmap_max (the run: 8, the command line: 16)" in last
    assert sorted((out / "faces").iterdir()) == runs  # no new run dir: latest is still the resumed run


def test_a_gpu_preset_without_a_gpu_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        warn_without_gpus(to_object(compose_config("train", "gpus=1gpu")))
        warn_without_gpus(to_object(compose_config("train", "gpus=cpu")))
    assert [r.getMessage() for r in caplog.records] == [
        "gpus=1gpu is a GPU preset but TensorFlow sees no GPU here: training on the CPU with that preset's "
        "minibatches (gpus=cpu has CPU-sized ones)"]


def test_a_checkpoint_that_does_not_fit_is_one_line_without_tensorflow_warnings(stylegan_run, tiny_cfg,
                                                                                  tmp_path, capfd):
    shutil.copytree(stylegan_run.run_dir / "checkpoints", tmp_path / "run" / "checkpoints")  # no config.yaml
    with pytest.raises(CheckpointError) as err:
        Trainer(tiny_cfg("model.fmap_max=8", "resume=path", f"resume.path={tmp_path / 'run'}"),
                tmp_path / "again")
    message = str(err.value)
    assert "\n" not in message and len(message) < 1200
    assert "does not fit this run's networks: shape mismatch" in message
    assert "D/blocks/0/dense0/bias (16,) where the network has (8,)" in message
    assert "could not be found" not in capfd.readouterr().err


@pytest.mark.parametrize(("override", "named"), [
    ("schedule.network_snapshot_ticks=0", "schedule.network_snapshot_ticks=0 (must be >= 1)"),
    ("schedule.accumulate=0", "schedule.accumulate=0 (must be >= 1)"),
    ("schedule.lod_initial_resolution=6", "schedule.lod_initial_resolution=6 (must be a power of two >= 4)"),
    ("augment.p=1.5", "augment.p=1.5 (must be in [0, 1])"),
    ("metrics.interval_ticks=0", "metrics.interval_ticks=0 (must be >= 1)"),
])
def test_a_value_out_of_range_is_named_before_any_work(override, named):
    with pytest.raises(ConfigError, match=f"^{re.escape(named)}$"):
        training_config(compose_config("train", *TINY, override))


@pytest.mark.parametrize(("override", "expected"), [
    ("schedule.tick_kimg_dict={}", {}),
    ("schedule.tick_kimg_dict={32: 2}", {32: 2.0}),
    ("+schedule.G_lrate_dict={32: 0.1}", {32: 0.1}),
    ("gpus.minibatch_dict={32: 8}", {32: 8}),
])
def test_a_dict_on_the_command_line_is_the_dict(override, expected):
    """Hydra would merge it into the preset's dict key by key (`={}` changing nothing)."""
    cfg, _ = training_config(compose_config("train", override), overrides=[override])
    group, key = override.lstrip("+").split("=")[0].split(".")
    assert getattr(getattr(cfg, group), key) == expected
