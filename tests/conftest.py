"""Shared test helpers and session fixtures; no test module imports another.

- The repo's paths, Hydra composition (`compose_config`, the `tiny_cfg` fixture), the entry points run as a
  user runs them (`run_script`), a run's metrics.jsonl (`ticks_of`).
- The tiny experiment (conf/experiment/tiny.yaml: 2 kimg at 16² on 128 synthetic faces) per architecture:
  `ARCHS` holds each one's overrides, `tiny_model` its model config.
- Session fixtures, built once and shared: the synthetic datasets (`synthetic_datasets`, `tiny_dataset`),
  snapshots of random tiny networks (`random_snapshots`), a tiny Inception archive for FID, and one finished
  train.py run per architecture (`stylegan_run`, `stylegan2_run`) for every test that only reads a trained
  run, its snapshots or checkpoints; a test that changes a run copies it first (`TrainedRun.copy_to`).
  Tests that use a trained run are marked slow.
- The real images in ../shared/data (`shared_data`): tests that need them skip visibly, and fail under CI=true
  (data_guard.py).
- Quiet, offline TensorFlow and wandb.

Helper modules beside it: original_stylegan*.py (the original networks: pickles in their format and NumPy
references), split_steps.py (split steps against the whole step), export_check.py and step_reference.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import data_guard
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from stylegan_exp.config import ModelConfig, Precision, to_object
from stylegan_exp.data.prepare_config import register_prepare_configs
from stylegan_exp.schemas import register_configs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
SHARED_DATA = REPO.parent / "shared" / "data"
TINY = ["+experiment=tiny"]  # conf/experiment/tiny.yaml: seconds-long runs at 16²
SG2_TINY = [*TINY, "model=stylegan2"]  # the same tiny networks as StyleGAN2 (trained at 16² throughout)
ARCHS = {"stylegan": TINY, "stylegan2": SG2_TINY}
# Session fixtures that train: a test using one is slow (`pytest -m "not slow"` leaves it out).
TRAINING_FIXTURES = {"stylegan_run", "stylegan2_run", "stylegan_samples", "trained"}


# ------------------------------------------------------------------------------------------------- config


def compose_config(name: str, *overrides: str) -> DictConfig:
    """conf/<name>.yaml composed with the overrides, as the entry point would see it."""
    register_configs()
    register_prepare_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@functools.cache
def _tiny_config(arch: str):
    return to_object(compose_config("train", *ARCHS[arch]))


def tiny_model(arch: str = "stylegan", **changes) -> ModelConfig:
    """The tiny experiment's model config for `arch` (float32 unless changed), with `changes` applied."""
    model = _tiny_config(arch).model
    if model.precision == Precision.auto:
        model = dataclasses.replace(model, precision=Precision.float32)
    return dataclasses.replace(model, **changes)


@pytest.fixture
def tiny_cfg(tmp_path: Path, tiny_dataset: Path) -> Callable:
    """`tiny_cfg(*overrides, arch="stylegan")`: the typed tiny training config of `arch`, writing under
    tmp_path/outputs, on the session's synthetic faces, without a tracker (overrides come last and win)."""

    def make(*overrides: str, arch: str = "stylegan"):
        return to_object(compose_config("train", *ARCHS[arch], f"outputs_root={tmp_path / 'outputs'}",
                                        f"dataset.path={tiny_dataset}", "logger=none", *overrides))

    return make


# ------------------------------------------------------------------------------------------------ running


@pytest.fixture(autouse=True)
def _no_inherited_wandb_service() -> Iterator[None]:
    """A test that ran wandb in this process leaves WANDB_SERVICE set, and every train.py started later
    would join that long-lived service: a run killed hard then keeps its run id "in use" there for the
    whole session, which a user's shell never does."""
    os.environ.pop("WANDB_SERVICE", None)
    yield
    os.environ.pop("WANDB_SERVICE", None)


def user_env(**extra: str) -> dict[str, str]:
    """The environment a user's shell has (no TF_CPP_MIN_LOG_LEVEL), plus `extra`."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | extra


def run_script(script: str, *overrides: str, cwd: Path, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    """Run train.py/sample.py/prepare.py as a user would; fails the test with its stderr if it fails."""
    proc = subprocess.run([sys.executable, str(REPO / script), *overrides], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A port p with p + 1 free too, as a Slurm node's two tasks listen on port_base and port_base + 1."""
    while True:
        port = free_port()
        with socket.socket() as s:
            if s.connect_ex(("localhost", port + 1)) != 0:
                return port


def tf_configs(workers: int = 2) -> list[str]:
    """TF_CONFIG for each of `workers` processes on free loopback ports."""
    cluster = {"worker": [f"localhost:{free_port()}" for _ in range(workers)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(workers)]


def worker_env(tf_config: str, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of one worker process of a gpus=multinode run."""
    return {**(base or os.environ), "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}


def metrics_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def ticks_of(run_dir: Path) -> list[dict]:
    """The tick rows of a run's metrics.jsonl."""
    return [r for r in metrics_rows(run_dir) if "tick" in r]


def run_dirs(outputs: Path, name: str = "tiny") -> list[Path]:
    """The training run dirs of experiment `name` (not sample.py's), oldest first."""
    return sorted(p for p in (outputs / name).iterdir() if p.is_dir() and not p.name.startswith("samples"))


def checkpoint_numbers(run_dir: Path) -> list[int]:
    """The nimg of every checkpoint kept in run_dir/checkpoints, ascending."""
    return sorted(int(p.name.split("-")[1].split(".")[0])
                  for p in (run_dir / "checkpoints").glob("ckpt-*.index"))


# --------------------------------------------------------------------------------- shared by the workers


def shared_root(tmp_path_factory) -> Path:
    """The session's temp folder that every pytest-xdist worker sees (each worker's own is below it), so a
    session fixture is built once per test run, not once per worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Holds `path`'s lock file: the first worker builds what is at `path`, the others wait for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def built_once(tmp_path_factory, name: str, build: Callable[[Path], dict]) -> dict:
    """`build(folder)`'s JSON result, made by the first worker that asks for `name` and read by the others."""
    folder = shared_root(tmp_path_factory) / name
    record = folder / "built.json"
    with exclusive(folder):
        if not record.exists():
            if folder.exists():
                shutil.rmtree(folder)  # what a failed build left
            folder.mkdir()
            record.write_text(json.dumps(build(folder)))
        return json.loads(record.read_text())


# ----------------------------------------------------------------------------------------------- datasets


@pytest.fixture(scope="session")
def synthetic_datasets(tmp_path_factory) -> Callable[..., Path]:
    """`synthetic_datasets(resolution=16, count=128, seed=0)`: synthetic faces drawn once per session, in a
    folder named as the config names it (synthetic-16-n128-seed0); tests only read them."""
    from stylegan_exp.data.synthetic import ensure_synthetic_dataset

    root = shared_root(tmp_path_factory) / "datasets"

    def get(resolution: int = 16, count: int = 128, seed: int = 0) -> Path:
        path = root / f"synthetic-{resolution}-n{count}-seed{seed}"
        with exclusive(path):
            return ensure_synthetic_dataset(path, count=count, resolution=resolution, seed=seed)

    return get


@pytest.fixture(scope="session")
def tiny_dataset(synthetic_datasets) -> Path:
    """The tiny experiment's synthetic faces (dataset option synthetic_tiny)."""
    syn = _tiny_config("stylegan").dataset.synthetic
    return synthetic_datasets(syn.resolution, syn.count, syn.seed)


# ----------------------------------------------------------------------------------------- sample helpers


def run_task(snapshot: Path | str, run_dir: Path, *overrides: str) -> list[Path]:
    """sample.py's task on `snapshot`, in-process, writing into run_dir."""
    from stylegan_exp.run import start_sampling

    return start_sampling(compose_config("sample", f"snapshot={snapshot}", *overrides), str(run_dir))


def size_of(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def cells(path: Path, size: int = 16) -> np.ndarray:
    """A grid PNG of size×size cells as [rows, cols, size, size, C]."""
    from stylegan_exp.data.images import load_image

    grid = load_image(path)
    h, w, c = grid.shape
    return grid.reshape(h // size, size, w // size, size, c).transpose(0, 2, 1, 3, 4)


def write_images(folder: Path, count: int, seed: int) -> list[Path]:
    """`count` random images of assorted sizes and channels (what rank must resize)."""
    from stylegan_exp.data.images import save_image

    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    shapes = [(20, 20, 3), (24, 32, 3), (16, 16, 1), (40, 40, 3)]
    paths = []
    for i in range(count):
        path = folder / f"img-{i}.png"
        save_image(rng.randint(0, 256, shapes[i % len(shapes)]).astype(np.uint8), path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def random_snapshots(tmp_path_factory) -> Callable[..., Path]:
    """`random_snapshots(arch="stylegan", res=16, w_avg_scale=0.1, **model_changes)`: a snapshot of randomly
    initialised tiny networks (the same every run) whose noise inputs and w_avg matter (both are zero at
    init: noise strengths 0.5, w_avg random), made once per session; tests only read it."""
    made: dict[tuple, Path] = {}

    def get(arch: str = "stylegan", res: int = 16, w_avg_scale: float = 0.1, **changes) -> Path:
        key = (arch, res, w_avg_scale, tuple(sorted(changes.items())))
        if key not in made:
            name = "-".join(["random", arch, str(res), str(w_avg_scale), *(f"{k}-{v}" for k, v in key[3])])

            def build(folder: Path) -> dict:
                path = folder / "network-snapshot-000000.npz"
                return {"path": str(_random_snapshot(path, tiny_model(arch, **changes), res, w_avg_scale))}

            made[key] = Path(built_once(tmp_path_factory, name, build)["path"])
        return made[key]

    return get


def _random_snapshot(path: Path, model: ModelConfig, res: int, w_avg_scale: float) -> Path:
    import tensorflow as tf

    from stylegan_exp.models import build_discriminator, build_generator, save_snapshot
    from stylegan_exp.nets.weights import variables_by_path

    tf.random.set_seed(0)
    G = build_generator(model, res)
    for name, var in variables_by_path(G).items():
        if name.endswith("noise/weight"):
            var.assign(np.full(var.shape, 0.5, np.float32))
    G.w_avg.assign(np.random.RandomState(0).randn(*G.w_avg.shape).astype(np.float32) * w_avg_scale)
    return save_snapshot(path, {"G": G, "D": build_discriminator(model, res), "Gs": G}, model=model,
                         resolution=res, num_channels=3, kimg=0.0)


# ---------------------------------------------------------------------------------------- metrics helpers

INCEPTION_KERNEL = np.random.RandomState(0).randn(3, 3, 3, 5).astype(np.float32)


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def tiny_inception_graph(size: int = 8, add_shapes: bool = False) -> bytes:
    """The original's shape in miniature: JPEG bytes → DecodeJpeg → Cast → ExpandDims → ResizeBilinear
    (to `size`, not 299) → (x − 128)/128 → conv → pool_3 [1, 1, 1, 5] → pool_3/_reshape [1, 5] (batch 1
    baked in, as in the original)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        decoded = tf.cast(tf.image.decode_jpeg(contents, channels=3, name="DecodeJpeg"), tf.float32)
        x = tf.expand_dims(decoded, 0, name="ExpandDims")
        x = tf.raw_ops.ResizeBilinear(images=x, size=tf.constant([size, size]), name="ResizeBilinear")
        x = tf.nn.relu(tf.nn.conv2d((x - 128.0) / 128.0, tf.constant(INCEPTION_KERNEL), 1, "SAME"))
        pool = tf.nn.avg_pool2d(x, size, 1, "VALID", name="pool_3")
        tf.reshape(pool, [1, 5], name="pool_3/_reshape")
    return graph.as_graph_def(add_shapes=add_shapes).SerializeToString()


@pytest.fixture(scope="session")
def inception_archive(tmp_path_factory) -> Path:
    """The tiny Inception graph packed as the standard archive, to serve from a file:// URL."""

    def build(folder: Path) -> dict:
        graph = {"classify_image_graph_def.pb": tiny_inception_graph()}
        return {"path": str(tgz(folder / "inception-2015-12-05.tgz", graph))}

    return Path(built_once(tmp_path_factory, "inception", build)["path"])


def stand_in_perceptual():
    """A small random conv net in LPIPS's place (PPL's perceptual distance)."""
    import keras
    import tensorflow as tf

    from stylegan_exp.metrics.ppl import lpips_distance

    tf.random.set_seed(1)
    conv = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(6, 3, activation="relu"),
                             keras.layers.Conv2D(8, 3, strides=2, activation="relu")])
    return lpips_distance(lambda x: [conv(x / 127.5 - 1.0)])


# ---------------------------------------------------------------------------------------- trained runs


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A finished train.py run: the outputs root it was given, its run dir, its other overrides, and what it
    printed."""

    outputs: Path
    run_dir: Path
    overrides: tuple[str, ...]
    stdout: str = ""
    stderr: str = ""

    @property
    def ticks(self) -> list[dict]:
        return ticks_of(self.run_dir)

    @property
    def snapshots(self) -> list[Path]:
        """Its network snapshots, oldest first."""
        return sorted(self.run_dir.glob("network-snapshot-*.npz"))

    def checkpoint(self, nimg: int | None = None) -> Path:
        """The prefix of its checkpoint at `nimg` (default: the last)."""
        number = checkpoint_numbers(self.run_dir)[-1] if nimg is None else nimg
        return self.run_dir / "checkpoints" / f"ckpt-{number}"

    def to_json(self) -> dict:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, saved: dict) -> TrainedRun:
        return cls(Path(saved["outputs"]), Path(saved["run_dir"]), tuple(saved["overrides"]), saved["stdout"],
                   saved["stderr"])

    def copy_to(self, outputs: Path) -> TrainedRun:
        """The run copied under another outputs root, for a test that adds to it (sample.py, resume)."""
        shutil.copytree(self.outputs, outputs, symlinks=True)
        run_dir = outputs / self.run_dir.relative_to(self.outputs)
        return dataclasses.replace(self, outputs=outputs, run_dir=run_dir)


def train_once(root: Path, *overrides: str, workers: int = 1) -> TrainedRun:
    """train.py with `overrides` under root/outputs (run from root) as a user's shell runs it, on `workers`
    loopback worker processes (gpus=multinode) if more than one; the chief's output is the run's."""
    outputs = root / "outputs"
    args = [sys.executable, str(REPO / "train.py"), *overrides, f"outputs_root={outputs}"]
    if workers == 1:
        procs = [subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=user_env())]
    else:
        args += ["gpus=multinode", f"gpus.num_gpus={workers}"]
        procs = [subprocess.Popen(args, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=worker_env(config)) for config in tf_configs(workers)]
    printed = [p.communicate(timeout=900) for p in procs]
    for proc, (_, err) in zip(procs, printed, strict=True):
        assert proc.returncode == 0, err[-3000:]
    (run_dir,) = [d for d in run_dirs(outputs) if (d / "metrics.jsonl").exists()]
    stdout = "".join(out for out, _ in printed)
    return TrainedRun(outputs, run_dir, tuple(overrides), stdout, printed[0][1])


# The session's StyleGAN run: 1.2 kimg growing from 8² to 16² (lod 1 → 0 between 0.3 and 0.6 kimg), snapshots
# every 0.5 kimg (the first one while growing), checkpoints every 0.25 kimg, tracked by wandb offline, with
# SWD, FID and KID at every tick from the final resolution on (FID on the tiny Inception graph).
STYLEGAN_RUN = (*TINY, "schedule.total_kimg=1.2", "run.checkpoint_kimg=0.25", "metrics=swd",
                "metrics.kinds=[swd,fid,kid]", "metrics.num_images=64", "metrics.interval_ticks=1",
                "metrics.swd.nhoods_per_image=16", "metrics.kid.num_subsets=5")


@pytest.fixture(scope="session")
def stylegan_run(tmp_path_factory, tiny_dataset, inception_archive) -> TrainedRun:
    """The session's StyleGAN train.py run (STYLEGAN_RUN), with the output a user's terminal shows."""

    def train(root: Path) -> dict:
        return train_once(root, *STYLEGAN_RUN, f"dataset.path={tiny_dataset}",
                          f"metrics.cache_dir={root / 'cache'}",
                          f"metrics.fid.standard.url={inception_archive.as_uri()}").to_json()

    return TrainedRun.from_json(built_once(tmp_path_factory, "stylegan-run", train))


@dataclasses.dataclass(frozen=True)
class Samples:
    """sample.py's output folder and what it printed."""

    folder: Path
    stderr: str


@pytest.fixture(scope="session")
def stylegan_samples(stylegan_run, tmp_path_factory) -> Samples:
    """`sample.py name=tiny seeds=[3,5,7] truncation_psi=0.5` on a copy of the session's StyleGAN run, as a
    user's shell runs it (it finds the newest run of experiment tiny)."""

    def sample(root: Path) -> dict:
        run = stylegan_run.copy_to(root / "outputs")
        proc = run_script("sample.py", "name=tiny", f"outputs_root={run.outputs}", "seeds=[3,5,7]",
                          "truncation_psi=0.5", cwd=root, env=user_env())
        (folder,) = (run.outputs / "tiny").glob("samples-*")
        return {"folder": str(folder), "stderr": proc.stderr}

    made = built_once(tmp_path_factory, "stylegan-samples", sample)
    return Samples(Path(made["folder"]), made["stderr"])


# The session's StyleGAN2 run: 0.3 kimg at 16² on 2 loopback workers, in accumulated micro-batches and mixed
# bfloat16, tracked by wandb offline.
STYLEGAN2_RUN = (*SG2_TINY, "schedule.total_kimg=0.3", "schedule.accumulate=2",
                 "model.precision=mixed_bfloat16")


@pytest.fixture(scope="session")
def stylegan2_run(tmp_path_factory, tiny_dataset) -> TrainedRun:
    """The session's StyleGAN2 train.py run (STYLEGAN2_RUN) on 2 workers; stdout holds both workers'."""
    return TrainedRun.from_json(built_once(tmp_path_factory, "stylegan2-run", lambda root: train_once(
        root, *STYLEGAN2_RUN, f"dataset.path={tiny_dataset}", workers=2).to_json()))


# ------------------------------------------------------------------------------------------ shared data


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The small real images beside the repo. Tests that need them skip when the folder is absent (counted in
    one line at the end of the run), and fail under CI=true."""
    return data_guard.require_folder(SHARED_DATA)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a trained run are slow; tests that share a module fixture run in one xdist process
    (`--dist loadgroup`), so it is built once; every other test goes to whichever process is free."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info else ()
        if any(d[-1].scope == "module" for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


def pytest_terminal_summary(terminalreporter) -> None:
    data_guard.report_skips(terminalreporter, SHARED_DATA)
