"""`sample.py task=metrics` and a training run's metrics, through Hydra, with the standard Inception path
served from a file:// URL."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config
from test_metrics_networks import sha256, tgz, tiny_inception_graph
from test_resume import tiny_cfg

from stylegan_exp.data.writer import pack_arrays
from stylegan_exp.models import build_discriminator, build_generator, save_snapshot
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.run import start_sampling
from stylegan_exp.train.loop import Trainer

TINY_MODEL = StyleGANConfig(name="tiny", fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                            mapping_layers=2, mapping_fmaps=16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("metrics-task")
    snapshot = save_snapshot(root / "network-snapshot-000000.npz",
                             {"G": build_generator(TINY_MODEL, 16), "D": build_discriminator(TINY_MODEL, 16),
                              "Gs": build_generator(TINY_MODEL, 16)},
                             model=TINY_MODEL, resolution=16, num_channels=3, kimg=0.0)
    images = np.random.RandomState(0).randint(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    data = root / "data"
    pack_arrays(images, data)
    archive = tgz(root / "inception-2015-12-05.tgz", {"classify_image_graph_def.pb": tiny_inception_graph()})
    return snapshot, data, archive


def run_metrics(setup, run_dir: Path, *overrides: str) -> list[Path]:
    snapshot, data, _ = setup
    cfg = compose_config("sample", f"snapshot={snapshot}", "task=metrics", f"task.dataset={data}",
                         f"task.metrics.cache_dir={run_dir / 'cache'}", *overrides)
    return start_sampling(cfg, str(run_dir))


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


@pytest.mark.slow
def test_training_logs_fid_and_kid_at_the_tick_interval(setup, tmp_path: Path) -> None:
    archive = setup[2]
    cfg = tiny_cfg(tmp_path, "metrics=fid", "metrics.kinds=[fid,kid]", "metrics.num_images=64",
                   "metrics.interval_ticks=1", "metrics.kid.num_subsets=5", "schedule.total_kimg=0.9",
                   f"metrics.cache_dir={tmp_path / 'cache'}", f"metrics.fid.standard.url={archive.as_uri()}")
    run_dir = tmp_path / "run"
    Trainer(cfg, run_dir).run()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evaluated = [r for r in rows if "metrics/fid64" in r]
    assert evaluated and all(r["kimg"] >= 0.3 for r in evaluated)  # only at the final resolution
    assert all(set(r) >= {"metrics/fid64", "metrics/kid64", "metrics/kid64_std"} for r in evaluated)
    assert all(np.isfinite(r["metrics/fid64"]) and r["metrics/fid64"] > 0 for r in evaluated)
    assert len(list((tmp_path / "cache").glob("synthetic-16-*/inception-2015-12-05-16px-64-seed0.npy"))) == 1
