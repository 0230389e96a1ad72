"""Conditional training (model.conditional=true): labelled reals, fakes' labels drawn from the dataset's,
snapshots and runs that record the vocabulary, transfer from an unconditional snapshot, metrics on labels."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import tensorflow as tf
from conftest import metrics_rows
from labelled_faces import HAIR_TAGS, LABELS, pack_labelled_faces

from stylegan_exp.config import ConfigError
from stylegan_exp.data.dataset_format import DatasetError, LabelSpace
from stylegan_exp.data.reader import read_labels
from stylegan_exp.data.vocabulary import same_vocabulary
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics.evaluate import fake_batches
from stylegan_exp.models import (
    build_discriminator,
    build_generator,
    load_snapshot,
    model_config,
    save_snapshot,
)
from stylegan_exp.nets.weights import weights_of
from stylegan_exp.train.builder import build_run
from stylegan_exp.train.conditional import grid_labels, run_labels
from stylegan_exp.train.loop import Trainer


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return pack_labelled_faces(tmp_path_factory.mktemp("labelled") / "faces", 32, 16)


def _cfg(tiny_cfg, dataset, *overrides, arch="stylegan"):
    return tiny_cfg("dataset=folder", f"dataset.path={dataset}", "dataset.resolution=16",
                    "model.conditional=true", *overrides, arch=arch)


def test_reader_gives_every_label_vector(faces):
    labels = read_labels(faces)
    assert labels.shape == (32, 14)
    assert np.all(labels[:, :13].sum(axis=1) == 1)  # one hair colour each


def test_conditional_model_needs_a_labelled_dataset(tiny_cfg, tmp_path):
    with pytest.raises(ConfigError, match="needs a labelled dataset, but .* has no labels"):
        build_run(tiny_cfg("model.conditional=true"), tmp_path / "run")


def test_only_stylegan_and_stylegan2_are_conditional(tmp_path):
    model = model_config("stylegan3", {"name": "sg3", "conditional": True})
    with pytest.raises(ConfigError, match="not available for stylegan3"):
        run_labels(model, LABELS, tmp_path)


def test_another_vocabulary_is_one_line():
    other = LabelSpace([*HAIR_TAGS, "open_mouth"], {"hair_color": HAIR_TAGS})
    with pytest.raises(DatasetError, match=r"run1 was trained on 14 .* \(new open_mouth; missing smile\)"):
        same_vocabulary(LABELS, other, "run1")
    same_vocabulary(LABELS, LabelSpace(list(LABELS.names)), "run1")


def test_grid_rows_show_one_label_each():
    labels = np.eye(3, dtype=np.float32)[[0, 1, 1, 2, 1, 0]]
    grid = grid_labels(labels, 8, 4)
    assert np.array_equal(grid[:4], np.tile(np.eye(3)[1], (4, 1)))  # the most frequent label first
    assert np.array_equal(grid[4:], np.tile(np.eye(3)[0], (4, 1)))


def test_metrics_draw_labels_from_the_dataset(tiny_cfg, faces):
    model = tiny_cfg().model
    Gs = build_generator(model, 16, 3, c_dim=14)
    labels = read_labels(faces)
    with pytest.raises(MetricError, match="need the dataset's labels"):
        next(fake_batches(Gs, 4, 4))
    first = next(fake_batches(Gs, 4, 4, labels=labels))
    other = next(fake_batches(Gs, 4, 4, labels=np.roll(labels, 1, axis=1)))
    assert first.shape == (4, 16, 16, 3) and np.abs(first - other).max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["stylegan", "stylegan2"])
def test_conditional_run_records_its_labels(tiny_cfg, faces, tmp_path, arch):
    extra = ["schedule.accumulate=2"] if arch == "stylegan2" else ["augment=diffaugment"]
    trainer = Trainer(_cfg(tiny_cfg, faces, "schedule.total_kimg=0.05", *extra, arch=arch), tmp_path / "run")
    snapshot = trainer.run()
    snap = load_snapshot(snapshot)
    assert snap.labels.names == LABELS.names and snap.labels.groups == LABELS.groups
    assert snap.model.conditional and "mapping/embed/weight" in snap.subset("Gs")
    assert json.loads((tmp_path / "run" / "labels.json").read_text())["names"] == LABELS.names
    assert (tmp_path / "run" / "fakes000000.png").is_file()
    captions = [r["fakes/caption"] for r in metrics_rows(tmp_path / "run") if "fakes/caption" in r]
    assert captions and captions[0].startswith("rows: ") and captions[0].count(" | ") == 1  # a 4×2 grid
    # resuming its checkpoint on a dataset with another vocabulary is one line
    hair_only = LabelSpace(HAIR_TAGS, {"hair_color": HAIR_TAGS})
    other = pack_labelled_faces(tmp_path / "other", 8, 16, space=hair_only)
    with pytest.raises(DatasetError, match="trained on 14 labels and this dataset has 13 .*missing smile"):
        build_run(_cfg(tiny_cfg, other, arch=arch), tmp_path / "again",
                  resume_from=tmp_path / "run" / "checkpoints")


def test_transfer_from_an_unconditional_snapshot(tiny_cfg, faces, tmp_path, caplog):
    model = tiny_cfg().model
    nets = {"G": build_generator(model, 16, 3), "D": build_discriminator(model, 16, 3),
            "Gs": build_generator(model, 16, 3)}
    source = save_snapshot(tmp_path / "plain.npz", nets, model=model, resolution=16, num_channels=3, kimg=1.0)
    with caplog.at_level(logging.INFO):
        run = build_run(_cfg(tiny_cfg, faces, f"transfer.source={source}"), tmp_path / "run")
    assert "transfer: G starts fresh where the snapshot (unconditional, 1:1) has no weights of its shape: " \
           "mapping/dense/0/weight, mapping/embed/bias, mapping/embed/weight" in caplog.text
    assert "transfer: D starts fresh where the snapshot" in caplog.text
    plain, ours = weights_of(nets["Gs"]), weights_of(run.Gs)
    shared = [k for k in plain if k != "mapping/dense/0/weight"]
    assert shared and all(np.array_equal(plain[k], ours[k]) for k in shared)
    d_plain, d_ours = weights_of(nets["D"]), weights_of(run.D)
    assert np.array_equal(d_plain["blocks/1/conv0/weight"], d_ours["blocks/1/conv0/weight"])
    assert d_ours["blocks/0/dense1/weight"].shape[1] > 1
    # a conditional snapshot does not continue as an unconditional model
    cond = save_snapshot(tmp_path / "cond.npz", {"G": run.G, "D": run.D, "Gs": run.Gs}, model=run.cfg.model,
                         resolution=16, num_channels=3, kimg=1.0, labels=LABELS)
    with pytest.raises(ConfigError, match="is conditional on 14 labels: continue it with model.conditional"):
        build_run(_cfg(tiny_cfg, faces, f"transfer.source={cond}", "model.conditional=false"),
                  tmp_path / "r2")
    tf.keras.backend.clear_session()
