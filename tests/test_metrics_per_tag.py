"""Per-tag FID of a conditional generator (metrics.per_tag): through evaluate with the tiny Inception graph,
in a training run's metrics action and in `sample.py task=metrics`; one-line refusals."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config, run_task, sha256
from labelled_faces import LABELS, pack_labelled_faces

from stylegan_exp.config import FIDConfig, MetricsConfig, NetworkFile
from stylegan_exp.data.reader import make_dataset, read_labels
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics import networks as nets
from stylegan_exp.metrics import per_tag as per_tag_module
from stylegan_exp.metrics.evaluate import evaluate, fake_batches
from stylegan_exp.metrics.fid import fid
from stylegan_exp.metrics.per_tag import tag_counts
from stylegan_exp.models import build_discriminator, build_generator, model_config, save_snapshot
from stylegan_exp.tracking import JsonlTracker
from stylegan_exp.train.actions.evaluate_metrics import EvaluateMetrics
from stylegan_exp.train.checkpoint import TrainState

TINY = {"name": "tiny", "fmap_base": 64, "fmap_max": 16, "latent_size": 16, "dlatent_size": 16,
        "mapping_layers": 2, "mapping_fmaps": 16}
# 40 faces: pink_hair 6, teal_hair 5, smile 8 images; every other tag fewer than 5
KEPT = ["pink_hair", "teal_hair", "smile"]


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    return pack_labelled_faces(tmp_path_factory.mktemp("per-tag") / "faces", 40, 16)


@pytest.fixture(scope="module")
def generators():
    model = model_config("stylegan", TINY)
    return model, build_generator(model, 16, 3, c_dim=14), build_generator(model, 16, 3)


def _cfg(archive: Path, **changes) -> MetricsConfig:
    network = NetworkFile(archive.as_uri(), sha256(archive) if archive.is_file() else None)
    fields = dict(kinds=["fid"], num_images=40, minibatch=8, per_tag=True, per_tag_min_images=5,
                  fid=FIDConfig(batch_size=8, standard=network))
    return MetricsConfig(name="fid", **{**fields, **changes})


def _every_real(faces: Path):
    """All 40 reals and their labels in stored order."""
    return next(iter(make_dataset(faces, 16, 40, shuffle_buffer=1, repeat=False, labels=True)))


def test_tag_counts_keep_tags_with_enough_images_capped_at_num_images():
    labels = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 0, 1]], np.float32)
    assert tag_counts(labels, ["a", "b", "c"], 2, 3) == ({"a": 3, "c": 2}, {"b": 1})


def test_per_tag_fid_is_fid_of_the_tags_reals_and_fakes_from_their_labels(faces, generators,
                                                                         inception_archive, tmp_path, caplog):
    Gs = generators[1]
    with caplog.at_level(logging.INFO):
        out = evaluate(Gs, faces, 16, _cfg(inception_archive), tmp_path)
    assert set(out) == {"metrics/fid40", *(f"metrics/fid_{t}" for t in KEPT)}
    skips = [r.getMessage() for r in caplog.records if "per-tag FID skips" in r.getMessage()]
    assert len(skips) == 1 and "11 tag(s) with fewer than metrics.per_tag_min_images=5" in skips[0]
    assert "black_hair (2)" in skips[0] and "smile" not in skips[0]
    # the same FID computed here from every real with the tag and fakes drawn from its label vectors
    _, extract = nets.inception_features(_cfg(inception_archive).fid, tmp_path)
    reals, labels = (t.numpy() for t in _every_real(faces))
    assert np.array_equal(labels, read_labels(faces))
    for tag in KEPT:
        has = labels[:, LABELS.index(tag)] > 0.5
        fakes = np.concatenate(list(fake_batches(Gs, int(has.sum()), 8, 0, labels[has])))
        assert out[f"metrics/fid_{tag}"] == pytest.approx(fid(extract(reals[has]), extract(fakes)), rel=1e-4)
    assert len({out[f"metrics/fid_{t}"] for t in KEPT}) == 3


def test_tag_reals_are_capped_cached_and_read_back(faces, generators, inception_archive, tmp_path,
                                                   monkeypatch):
    cfg = _cfg(inception_archive, num_images=6)  # smile: 6 of its 8 images
    out = evaluate(generators[1], faces, 16, cfg, tmp_path)
    folder = next(p for p in tmp_path.iterdir() if p.name.startswith("faces-"))
    smile = np.load(folder / f"inception-2015-12-05-tag{LABELS.index('smile')}-16px-6-seed0.npy")
    _, extract = nets.inception_features(cfg.fid, tmp_path)
    reals, labels = (t.numpy() for t in _every_real(faces))
    every_smile = extract(reals[labels[:, LABELS.index("smile")] > 0.5])
    assert smile.shape == (6, 5) and len({tuple(np.round(r, 4)) for r in every_smile}) == 8
    assert all(np.abs(every_smile - row).max(axis=1).min() < 1e-4 for row in smile)  # 6 distinct smiles
    assert len({tuple(np.round(r, 4)) for r in smile}) == 6

    def no_reals(*args, **kwargs):
        raise AssertionError("the cached per-tag features were not used")

    monkeypatch.setattr(per_tag_module, "tag_real_features", no_reals)
    assert evaluate(generators[1], faces, 16, cfg, tmp_path) == out


@pytest.mark.parametrize("changes, message", [
    ({}, r"^metrics.per_tag=true needs a conditional generator .*; this one is unconditional$"),
    ({"kinds": ["swd"]}, r"^metrics.per_tag=true adds per-tag FID: add fid to metrics.kinds=\['swd'\]$"),
    ({"per_tag_min_images": 1}, r"^metrics.per_tag_min_images=1: FID needs at least 2 images$"),
])
def test_per_tag_refusals_are_one_line_before_any_work(faces, generators, tmp_path, changes, message):
    cfg = _cfg(tmp_path / "no-inception.tgz", **changes)  # no network to load: refused before
    Gs = generators[2] if not changes else generators[1]
    with pytest.raises(MetricError, match=message):
        evaluate(Gs, faces, 16, cfg, tmp_path)
    assert not any(tmp_path.iterdir())


def test_per_tag_is_off_by_default_and_composes_from_the_command_line():
    assert MetricsConfig(name="fid").per_tag is False
    cfg = compose_config("train", "metrics=fid", "metrics.per_tag=true", "metrics.per_tag_min_images=50")
    assert cfg.metrics.per_tag is True and cfg.metrics.per_tag_min_images == 50


def test_training_metrics_log_per_tag_fid(faces, generators, inception_archive, tmp_path):
    tracker = JsonlTracker(tmp_path / "metrics.jsonl")
    action = EvaluateMetrics(generators[1], faces, _cfg(inception_archive, cache_dir=str(tmp_path / "cache")),
                             TrainState(nimg=1000), tracker, lambda tick: True)
    results = action.evaluate(generators[1].resolution_log2)
    tracker.close()
    (row,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {f"metrics/fid_{t}" for t in KEPT} <= set(row) and row["kimg"] == 1.0
    assert all(row[k] == pytest.approx(v) for k, v in results.items())


def test_metrics_task_writes_per_tag_fid(faces, generators, inception_archive, tmp_path):
    model, Gs, _ = generators
    snapshot = save_snapshot(tmp_path / "network-snapshot-000001.npz",
                             {"G": Gs, "D": build_discriminator(model, 16, 3, c_dim=14), "Gs": Gs},
                             model=model, resolution=16, num_channels=3, kimg=1.0, labels=LABELS)
    (path,) = run_task(snapshot, tmp_path / "run", "task=metrics", f"task.dataset={faces}",
                       f"task.metrics.cache_dir={tmp_path / 'cache'}", "task.metrics.kinds=[fid]",
                       "task.metrics.num_images=40", "task.metrics.per_tag=true",
                       "task.metrics.per_tag_min_images=5",
                       f"task.metrics.fid.standard.url={inception_archive.as_uri()}")
    results = json.loads(path.read_text())
    assert set(results) == {"metrics/fid40", *(f"metrics/fid_{t}" for t in KEPT)}
    assert all(np.isfinite(v) and v > 0 for v in results.values())


def test_training_refuses_per_tag_on_an_unconditional_model_at_start_up(tiny_cfg, tmp_path):
    from stylegan_exp.train.builder import build_run

    with pytest.raises(MetricError, match="needs a conditional generator"):
        build_run(tiny_cfg("metrics=fid", "metrics.per_tag=true"), tmp_path / "run")
