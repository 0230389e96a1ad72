"""A killed-and-resumed run equals an uninterrupted one (issue 29): G, D, Gs, Adam's moments and step, w_avg,
ADA's p, pl_mean, the random stream and the data stream, bit for bit, and the fakes grids after the resume.

Each case interrupts one run twice: SIGINT (the real signal, sent to the process at a random step before the
first periodic checkpoint), then, in the run that resumed it, a kill a few steps after that run's first
periodic checkpoint (an exception no handler catches: what a SIGKILL leaves is the files written so far); the
run that resumes the killed one must end where the uninterrupted one ends. Each case runs in a fresh process
with oneDNN's kernels off (TF_ENABLE_ONEDNN_OPTS=0, read when TensorFlow starts): on cores
shared with other work they do not reproduce a run bit for bit, TensorFlow's own CPU kernels do."""

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, compose_config
from PIL import Image

from stylegan_exp.config import to_object
from stylegan_exp.train.loop import Trainer

STYLEGAN2 = ("model=stylegan2", "model.fmap_base=64", "model.fmap_max=16", "model.latent_size=16",
             "model.dlatent_size=16", "model.mapping_layers=2", "model.mapping_fmaps=16",
             "model.pl_batch_shrink=1", "model.d_reg_interval=4", "model.g_reg_interval=2")
# Each case's overrides (its checkpoint interval among them) and the training steps (iterations) SIGINT may
# stop it at: before its first periodic checkpoint. StyleGAN grows 8² → 16² between 0.3 and 0.6 kimg (64
# images an iteration at 8², 32 at 16²; the checkpoint at 0.4 kimg is the 8th iteration's): its interruptions
# fall around the lod change. StyleGAN2 runs 32 images an iteration (its checkpoint at 0.3 kimg: the 10th).
CASES = {
    "stylegan": (("schedule.total_kimg=0.8", "run.checkpoint_kimg=0.4"), (2, 7)),
    "stylegan2_ada": ((*STYLEGAN2, "augment=ada", "augment.target=-1", "augment.interval=1",
                       "augment.ada_kimg=1", "schedule.total_kimg=0.6", "run.checkpoint_kimg=0.3",
                       "model.precision=float32"), (2, 8)),
}


class Killed(BaseException):
    """Ends a run like SIGKILL: nothing catches it, nothing more is written."""


def _cfg(tmp_path: Path, case: str, *extra: str):
    return to_object(compose_config(
        "train", *TINY, *CASES[case][0], "logger=none", f"dataset.path={tmp_path / 'data'}",
        f"outputs_root={tmp_path}", "run.checkpoint_minutes=1000",
        "dataset.mirror=true", "dataset.cache=false", *extra))


def _checkpoints(run_dir: Path) -> int:
    return len(list((run_dir / "checkpoints").glob("ckpt-*.index")))


def _sigint_at(trainer: Trainer, step: int) -> None:
    iteration, calls = trainer.steps.iteration, [0]

    def interrupted(*args):
        calls[0] += 1
        if calls[0] == step:
            os.kill(os.getpid(), signal.SIGINT)
        return iteration(*args)

    trainer.steps.iteration = interrupted


def _kill_after_checkpoint(trainer: Trainer, run_dir: Path, steps: int) -> list[int]:
    """Kills the run `steps` iterations after its first periodic checkpoint; returns [the step killed at]."""
    iteration, calls, at = trainer.steps.iteration, [0, None], []

    def interrupted(*args):
        calls[0] += 1
        if calls[1] is None and _checkpoints(run_dir) > 1:  # the resume's own start checkpoint is the first
            calls[1] = calls[0] + steps
        if calls[0] == calls[1]:
            at.append(calls[0])
            raise Killed
        return iteration(*args)

    trainer.steps.iteration = interrupted
    return at


def _state(trainer: Trainer) -> dict[str, np.ndarray]:
    """Everything a resume must restore, by name."""
    steps = trainer.steps
    found = {f"{net}/{v.name}/{i}": v.numpy() for net in ("G", "D", "Gs")
             for i, v in enumerate(getattr(trainer, net).variables)}
    for opt in (steps.G_opt, steps.D_opt):
        found |= {f"{opt.name}/m{i}": m.numpy() for i, m in enumerate(opt.m)}
        found |= {f"{opt.name}/v{i}": v.numpy() for i, v in enumerate(opt.v)}
        found[f"{opt.name}/step"] = opt.step.numpy()
    found["rng"] = steps.rng.state.numpy()
    found |= {f"augment/{i}": v.numpy() for i, v in enumerate(steps.augment.variables)}
    for name in ("pl_mean", "minibatches"):
        if hasattr(steps, name):
            found[name] = getattr(steps, name).numpy()
    found["nimg"] = np.array(trainer.state.nimg)
    return found


def _grids(run_dir: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in run_dir.glob("fakes*.png")}


def _resume_problems(tmp_path: Path, case: str) -> list:
    """What differs between the uninterrupted run and the twice interrupted one ([] when nothing)."""
    whole = Trainer(_cfg(tmp_path, case), tmp_path / "whole")
    whole.run()
    reference, reference_grids = _state(whole), _grids(tmp_path / "whole")
    draw, problems = random.Random(f"{case}-29"), []
    stopped, killed, ended = (tmp_path / name for name in ("stopped", "killed", "ended"))
    trainer = Trainer(_cfg(tmp_path, case), stopped)
    at = draw.randint(*CASES[case][1])
    _sigint_at(trainer, at)
    trainer.run()
    if trainer.stop_signal != signal.SIGINT:
        problems.append(["sigint", at, "not interrupted as asked"])
    trainer = Trainer(_cfg(tmp_path, case, "resume=path", f"resume.path={stopped}"), killed)
    killed_at = _kill_after_checkpoint(trainer, killed, draw.randint(0, 3))
    with contextlib.suppress(Killed):
        trainer.run()
    if not killed_at:
        problems.append(["kill", at, "not interrupted as asked"])
    resumed = Trainer(_cfg(tmp_path, case, "resume=path", f"resume.path={killed}"), ended)
    if not 0 < resumed.state.nimg <= trainer.state.nimg < reference["nimg"]:
        problems.append(["kill", killed_at, f"resumed at {resumed.state.nimg} images"])
    resumed.run()
    state = _state(resumed)
    different = sorted(set(reference) ^ set(state)) + [
        k for k in reference if k in state and not np.array_equal(state[k], reference[k])]
    for run_dir in (killed, ended):
        grids = _grids(run_dir)
        if not grids or not set(grids) <= set(reference_grids):
            problems.append([run_dir.name, f"grids {sorted(grids)}"])
        different += [f"{run_dir.name}/{n}" for n in grids
                      if n in reference_grids and not np.array_equal(grids[n], reference_grids[n])]
    if different:
        problems.append([at, killed_at, different[:8]])
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_killed_or_stopped_run_resumes_into_the_uninterrupted_one(tmp_path, case):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, __file__, case, str(tmp_path)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


if __name__ == "__main__":
    print(json.dumps(_resume_problems(Path(sys.argv[2]), sys.argv[1])))
