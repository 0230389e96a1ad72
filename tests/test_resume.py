"""Runs that survive: SIGKILL + resume=latest, SIGTERM checkpoint, NaN rollback, restarts, snapshot resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, TINY, compose_config
from PIL import Image

from stylegan_exp.config import to_object
from stylegan_exp.models import load_snapshot
from stylegan_exp.train.actions.recovery import NonFiniteError
from stylegan_exp.train.loop import Trainer


def tiny_cfg(tmp_path: Path, *overrides: str):
    return to_object(compose_config("train", *TINY, f"outputs_root={tmp_path / 'outputs'}",
                                    f"dataset.path={tmp_path / 'synthetic-16'}", "logger=none", *overrides))


def ticks_of(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "tick" in r]


def test_nonfinite_loss_rolls_back_and_lowers_learning_rate(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, "schedule.total_kimg=0.8", "run.rollback_lr_factor=0.25")
    trainer = Trainer(cfg, tmp_path / "run")
    real_d_step = trainer.steps.d_step
    calls = {"n": 0}

    def flaky_d_step(reals, level, fade):
        calls["n"] += 1
        out = real_d_step(reals, level, fade)
        if calls["n"] == 3:
            out["loss/D"] = tf.constant(float("nan"))
        return out

    monkeypatch.setattr(trainer.steps, "d_step", flaky_d_step)
    trainer.run()
    assert trainer.state.lr_scale == pytest.approx(0.25)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    rollback = [r for r in rows if "rollback/lr_scale" in r]
    assert len(rollback) == 1 and rollback[0]["kimg"] == 0.0  # back to the start checkpoint
    ticks = [r for r in rows if "tick" in r]
    assert ticks[0]["lr/G"] == pytest.approx(0.25 * cfg.schedule.G_lrate_base)
    assert all(np.isfinite(r["loss/D"]) for r in ticks)
    assert ticks[-1]["kimg"] >= 0.8


def test_rollbacks_are_bounded(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, "schedule.total_kimg=0.5", "run.max_rollbacks=1")
    trainer = Trainer(cfg, tmp_path / "run")
    monkeypatch.setattr(trainer.steps, "g_step", lambda *a: {"loss/G": tf.constant(float("inf"))})
    with pytest.raises(NonFiniteError, match="loss/G=inf"):
        trainer.run()


def test_exception_restarts_from_last_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, "schedule.total_kimg=0.6", "run.max_restarts=1")
    trainer = Trainer(cfg, tmp_path / "run")
    real_g_step = trainer.steps.g_step
    calls = {"n": 0}

    def crashing_g_step(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated device failure")
        return real_g_step(*args)

    monkeypatch.setattr(trainer.steps, "g_step", crashing_g_step)
    trainer.run()
    assert trainer.state.nimg >= 600
    cfg_no_restart = tiny_cfg(tmp_path, "schedule.total_kimg=0.6", "run.max_restarts=0")
    trainer = Trainer(cfg_no_restart, tmp_path / "run2")
    monkeypatch.setattr(trainer.steps, "g_step", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run()


def test_resume_from_network_snapshot_path(tmp_path):
    trainer = Trainer(tiny_cfg(tmp_path, "schedule.total_kimg=0.5"), tmp_path / "first")
    snapshot = trainer.run()
    resumed = Trainer(tiny_cfg(tmp_path, "schedule.total_kimg=0.8", "resume=path", f"resume.path={snapshot}"),
                      tmp_path / "second")
    assert resumed.state.nimg == int(round(load_snapshot(snapshot).kimg * 1000))
    np.testing.assert_array_equal(resumed.Gs.w_avg.numpy(), trainer.Gs.w_avg.numpy())


def test_user_errors_are_one_line(tmp_path):
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "dataset=folder", f"dataset.path={tmp_path / 'nope'}",
         f"outputs_root={tmp_path}", "logger=none"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "nope" in last and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "resume=latest", "name=never_ran",
         f"outputs_root={tmp_path}",
         f"dataset.path={tmp_path / 'syn'}", "dataset.synthetic.count=8", "logger=none"],
        capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 1 and "never_ran" in proc.stderr.strip().splitlines()[-1]


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.5)


def _checkpoints(out: Path) -> list[Path]:
    return sorted(out.glob("tiny/*/checkpoints/ckpt-*.index"))


@pytest.mark.slow
def test_sigkill_then_resume_latest_continues(tmp_path):
    out = tmp_path / "outputs"
    args = [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}",
            f"dataset.path={tmp_path / 'synthetic-16'}", "logger=none", "schedule.total_kimg=3",
            "run.checkpoint_kimg=0.25"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(_checkpoints(out)) >= 3, timeout=240)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    (first,) = sorted((out / "tiny").iterdir())
    last_ckpt = max(int(p.name.split("-")[1].split(".")[0]) for p in _checkpoints(out))
    subprocess.run([*args, "resume=latest"], cwd=tmp_path, check=True, capture_output=True)
    second = [d for d in (out / "tiny").iterdir() if d != first][0]
    resumed = ticks_of(second)
    assert resumed[0]["kimg"] > last_ckpt / 1000
    assert resumed[0]["kimg"] - last_ckpt / 1000 <= 0.25 + 0.3  # first tick ends at the next interval
    assert resumed[-1]["kimg"] >= 3
    for run_dir in (first, second):  # nothing half-written
        for png in run_dir.glob("*.png"):
            Image.open(png).load()
        for npz in run_dir.glob("*.npz"):
            load_snapshot(npz)
        assert not list(run_dir.glob("*.tmp"))


@pytest.mark.slow
def test_sigterm_writes_final_checkpoint(tmp_path):
    out = tmp_path / "outputs"
    args = [sys.executable, str(REPO / "train.py"), *TINY, f"outputs_root={out}",
            f"dataset.path={tmp_path / 'synthetic-16'}", "logger=none", "schedule.total_kimg=50"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: len(list(out.glob("tiny/*/fakes000001.png"))) == 1, timeout=240)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output[-2000:]
    (run_dir,) = (out / "tiny").iterdir()
    kimg = ticks_of(run_dir)[-1]["kimg"]
    newest = max(_checkpoints(out), key=lambda p: int(p.name.split("-")[1].split(".")[0]))
    assert int(newest.name.split("-")[1].split(".")[0]) == int(round(kimg * 1000))
    assert "stopped by SIGTERM" in output and "resume=latest" in output
