"""Runs that survive: SIGKILL + resume=latest, SIGTERM checkpoint, NaN rollback, restarts, resume from a
snapshot or a checkpoint of either architecture."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY, checkpoint_numbers, metrics_rows, run_dirs, run_script, ticks_of
from PIL import Image

from stylegan_exp.models import load_snapshot
from stylegan_exp.train.actions.recovery import NonFiniteError
from stylegan_exp.train.loop import Trainer

# The step each architecture's rollback test poisons, the call that returns NaN, and the loss it poisons.
POISONED = {"stylegan": ("d_step", 3, "loss/D"), "stylegan2": ("d_reg_step", 1, "loss/R1")}


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_nonfinite_loss_rolls_back_and_lowers_learning_rate(arch, tiny_cfg, tmp_path, monkeypatch):
    cfg = tiny_cfg("schedule.total_kimg=0.3", "run.rollback_lr_factor=0.25", arch=arch)
    trainer = Trainer(cfg, tmp_path / "run")
    name, bad_call, loss = POISONED[arch]
    real_step = getattr(trainer.steps, name)
    calls = {"n": 0}

    def flaky_step(*args):
        calls["n"] += 1
        out = real_step(*args)
        if calls["n"] == bad_call:
            out[loss] = tf.constant(float("nan"))
        return out

    monkeypatch.setattr(trainer.steps, name, flaky_step)
    restored = _record_restores(trainer, tmp_path / "written", monkeypatch)
    trainer.run()
    assert trainer.state.lr_scale == pytest.approx(0.25)
    ((prefix, before, after),) = restored
    assert Path(prefix).name == "ckpt-0"
    stored = _checkpoint_values(prefix)
    # Every network and both optimizers had moved on since the checkpoint; the rollback put back all of it.
    for owner in ("G/", "D/", "Gs/", "G_opt/m/", "G_opt/v/", "D_opt/m/", "D_opt/v/"):
        keys = [k for k in stored if k.startswith(owner)]
        assert keys and any(not np.array_equal(before[k], stored[k]) for k in keys), owner
    assert after.keys() == stored.keys()
    assert not [k for k in stored if not np.array_equal(after[k], stored[k])]
    rows = metrics_rows(tmp_path / "run")
    rollback = [r for r in rows if "rollback/lr_scale" in r]
    assert len(rollback) == 1 and rollback[0]["kimg"] == 0.0  # back to the start checkpoint
    ticks = [r for r in rows if "tick" in r]
    assert len(ticks) >= 2  # 0.3 kimg from the rollback in ticks of 0.25 kimg (+ at most one minibatch)
    assert ticks[0]["lr/G"] == pytest.approx(0.25 * cfg.schedule.G_lrate_base)
    assert all(np.isfinite(r["loss/D"]) and np.isfinite(r["loss/R1"]) for r in ticks)
    assert ticks[-1]["kimg"] >= 0.3


def _checkpoint_values(prefix: str) -> dict[str, np.ndarray]:
    """Every variable a checkpoint holds, by its key (the object graph itself left out)."""
    return {key: tf.train.load_variable(prefix, key) for key, _ in tf.train.list_variables(prefix)
            if key != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _record_restores(trainer: Trainer, scratch: Path, monkeypatch) -> list:
    """Records (prefix, values before, values after) for each restore of the trainer's checkpoint; the
    values are what the run's own tf.train.Checkpoint writes at that moment, keyed as the checkpoint is."""
    checkpoint, restored = trainer.checkpoint, []
    real_restore = checkpoint.restore

    def written(label: str) -> dict[str, np.ndarray]:
        return _checkpoint_values(checkpoint.ckpt.write(str(scratch / f"{label}-{len(restored)}")))

    def restore(directory):
        before = written("before")
        prefix = real_restore(directory)
        restored.append((prefix, before, written("after")))
        return prefix

    monkeypatch.setattr(checkpoint, "restore", restore)
    return restored


@pytest.mark.slow
def test_rollbacks_are_bounded(tiny_cfg, tmp_path, monkeypatch):
    trainer = Trainer(tiny_cfg("schedule.total_kimg=0.5", "run.max_rollbacks=1"), tmp_path / "run")
    monkeypatch.setattr(trainer.steps, "g_step", lambda *a: {"loss/G": tf.constant(float("inf"))})
    with pytest.raises(NonFiniteError, match="loss/G=inf"):
        trainer.run()


@pytest.mark.slow
def test_exception_restarts_from_last_checkpoint(tiny_cfg, tmp_path, monkeypatch):
    trainer = Trainer(tiny_cfg("schedule.total_kimg=0.3", "run.max_restarts=1"), tmp_path / "run")
    real_g_step = trainer.steps.g_step
    calls = {"n": 0}

    def crashing_g_step(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated device failure")
        return real_g_step(*args)

    monkeypatch.setattr(trainer.steps, "g_step", crashing_g_step)
    trainer.run()
    assert trainer.state.nimg >= 300
    trainer = Trainer(tiny_cfg("schedule.total_kimg=0.3", "run.max_restarts=0"), tmp_path / "run2")
    monkeypatch.setattr(trainer.steps, "g_step", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run()


@pytest.fixture(params=["stylegan", "stylegan2"])
def trained(request):
    """The session's trained run of each architecture."""
    return request.param, request.getfixturevalue(f"{request.param}_run")


def test_resume_from_network_snapshot_path(trained, tiny_cfg, tmp_path):
    """Networks from the snapshot (its Gs is the one the run checkpointed beside it), kimg from its record."""
    arch, run = trained
    snapshot = run.snapshots[-1]
    resumed = Trainer(tiny_cfg("resume=path", f"resume.path={snapshot}", arch=arch), tmp_path / "second")
    nimg = int(round(load_snapshot(snapshot).kimg * 1000))
    assert resumed.state.nimg == nimg == checkpoint_numbers(run.run_dir)[-1]
    w_avg = tf.train.load_variable(str(run.checkpoint()), "Gs/w_avg/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(resumed.Gs.w_avg.numpy(), w_avg)


def test_resume_from_checkpoint_keeps_optimizer_state(trained, tiny_cfg, tmp_path):
    """Adam's state (and StyleGAN2's path-length mean) as the run checkpointed them."""
    arch, run = trained
    prefix = str(run.checkpoint())
    resumed = Trainer(tiny_cfg("resume=path", f"resume.path={run.run_dir / 'checkpoints'}", arch=arch),
                      tmp_path / "second")
    step = tf.train.load_variable(prefix, "G_opt/step/.ATTRIBUTES/VARIABLE_VALUE")
    assert float(resumed.steps.G_opt.step) == step > 0
    if arch == "stylegan2":
        pl_mean = tf.train.load_variable(prefix, "pl_mean/.ATTRIBUTES/VARIABLE_VALUE")
        assert float(resumed.steps.pl_mean) == pl_mean > 0


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.2)


def _fakes(out) -> list:
    return sorted(out.glob("tiny/*/fakes*.png"))


@pytest.mark.slow
def test_sigkill_then_resume_latest_continues(tiny_dataset, tmp_path):
    """Killed after its checkpoint at 0.5 kimg, resumed the README way: kimg, ticks, the fakes numbering and
    the wandb run continue from the checkpoint, and nothing is left half-written. (At 16² throughout: one
    trace of the steps per process.)"""
    out = tmp_path / "outputs"
    args = [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}",
            f"dataset.path={tiny_dataset}", "schedule.lod_initial_resolution=16", "schedule.total_kimg=1",
            "run.checkpoint_kimg=0.5"]
    # Killed with its process group, as a scheduler kills a job (its wandb service too: a wandb service left
    # behind holds the run id, and the resume says so in one line).
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:  # the start's checkpoint and the one at 0.5 kimg
        _wait_for(lambda: len(list(out.glob("tiny/*/checkpoints/ckpt-*.index"))) >= 2, timeout=300)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    (first,) = run_dirs(out)
    last_ckpt = checkpoint_numbers(first)[-1]
    run_script("train.py", "name=tiny", "resume=latest", f"outputs_root={out}", cwd=tmp_path)
    second = [d for d in run_dirs(out) if d != first][0]
    resumed = ticks_of(second)
    assert resumed[0]["kimg"] > last_ckpt / 1000
    assert resumed[0]["kimg"] - last_ckpt / 1000 <= 0.25 + 0.3  # first tick ends at the next interval
    assert resumed[-1]["kimg"] >= 1
    checkpointed = [t for t in ticks_of(first) if round(t["kimg"] * 1000) == last_ckpt]
    assert resumed[0]["tick"] == checkpointed[0]["tick"] + 1
    assert not (second / "fakes000000.png").exists()  # the numbering continues (from fakes000001.png)
    (first_run,) = (first / "wandb").glob("offline-run-*")  # the same wandb run, so the curves continue
    (resumed_run,) = (second / "wandb").glob("offline-run-*")
    assert first_run.name.rsplit("-", 1)[1] == resumed_run.name.rsplit("-", 1)[1]
    for run_dir in (first, second):  # nothing half-written
        pngs, npzs = list(run_dir.glob("*.png")), list(run_dir.glob("*.npz"))
        assert pngs and npzs, run_dir  # reals, fakes and a snapshot every 0.5 kimg in each
        for png in pngs:
            Image.open(png).load()
        for npz in npzs:
            load_snapshot(npz)
        assert not list(run_dir.glob("*.tmp"))


@pytest.mark.slow
def test_sigterm_writes_final_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "outputs"
    args = [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}",
            f"dataset.path={tiny_dataset}", "logger=none", "schedule.total_kimg=50"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: len(_fakes(out)) >= 2, timeout=300)  # the start's grid and the first tick's
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output[-2000:]
    (run_dir,) = run_dirs(out)
    kimg = ticks_of(run_dir)[-1]["kimg"]
    assert checkpoint_numbers(run_dir)[-1] == int(round(kimg * 1000))
    assert "stopped by SIGTERM" in output and "resume=latest" in output
