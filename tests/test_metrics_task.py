"""`sample.py task=metrics` and a training run's metrics, through Hydra, with the standard Inception path
served from a file:// URL."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import metrics_rows, run_task, sha256

from stylegan_exp.data.writer import pack_arrays


@pytest.fixture(scope="module")
def setup(tmp_path_factory, random_snapshots, inception_archive) -> tuple[Path, Path, Path]:
    data = tmp_path_factory.mktemp("metrics-task") / "data"
    pack_arrays(np.random.RandomState(0).randint(0, 256, (40, 16, 16, 3), dtype=np.uint8), data)
    return random_snapshots("stylegan"), data, inception_archive


def run_metrics(setup, run_dir: Path, *overrides: str) -> list[Path]:
    snapshot, data, _ = setup
    return run_task(snapshot, run_dir, "task=metrics", f"task.dataset={data}",
                    f"task.metrics.cache_dir={run_dir / 'cache'}", *overrides)


def test_metrics_task_writes_fid_and_kid_under_the_papers_names(setup, tmp_path: Path) -> None:
    archive = setup[2]
    (path,) = run_metrics(setup, tmp_path, "task.metrics.kinds=[fid,kid]", "task.metrics.num_images=32",
                          f"task.metrics.fid.standard.url={archive.as_uri()}",
                          f"task.metrics.fid.standard.checksum={sha256(archive)}",
                          "task.metrics.kid.num_subsets=5")
    results = json.loads(path.read_text())
    assert set(results) == {"metrics/fid32", "metrics/kid32", "metrics/kid32_std"}
    assert results["metrics/fid32"] > 0 and all(np.isfinite(v) for v in results.values())
    cached = sorted(str(p.relative_to(tmp_path / "cache")) for p in (tmp_path / "cache").glob("*/*"))
    assert len(cached) == 2 and cached[0].startswith("data-") and cached[1].startswith("networks/")
    assert cached[0].endswith("/inception-2015-12-05-16px-32-seed0.npy")


def test_metrics_task_without_the_network_exits_with_one_line(setup, tmp_path: Path) -> None:
    url = (tmp_path / "nowhere.tgz").as_uri()
    with pytest.raises(SystemExit) as info:
        run_metrics(setup, tmp_path, "task.metrics.kinds=[fid]", f"task.metrics.fid.standard.url={url}")
    message = str(info.value.code)
    assert message.startswith(f"error: FID needs the 2015-12-05 Inception graph from {url}: ")
    assert "\n" not in message


def test_training_logs_fid_and_kid_at_the_tick_interval(stylegan_run) -> None:
    """The session's run evaluates FID and KID (64 images, the tiny Inception graph) at every tick."""
    rows = metrics_rows(stylegan_run.run_dir)
    evaluated = [r for r in rows if "metrics/fid64" in r]
    assert evaluated and all(r["kimg"] >= 0.3 for r in evaluated)  # only at the final resolution
    assert all(set(r) >= {"metrics/fid64", "metrics/kid64", "metrics/kid64_std"} for r in evaluated)
    assert all(np.isfinite(r["metrics/fid64"]) and r["metrics/fid64"] > 0 for r in evaluated)
    cache = stylegan_run.outputs.parent / "cache"
    assert len(list(cache.glob("synthetic-16-*/inception-2015-12-05-16px-64-seed0.npy"))) == 1
