"""The synthetic faces store their true attributes as labels (hair colour, smile, …): the same images
as the unlabelled set, each with its own vector; a labelled request never reuses a folder without those
labels; `dataset=synthetic_tags` composes a labelled dataset for conditional training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config

from stylegan_exp.config import to_object
from stylegan_exp.data.dataset_format import DatasetError
from stylegan_exp.data.reader import load_info
from stylegan_exp.data.synthetic import (
    HAIR_COLORS,
    LABEL_GROUPS,
    ensure_synthetic_dataset,
    face_tags,
    label_space,
    sample_face_params,
)
from stylegan_exp.train.builder import resolve_dataset

LABELS = ["hair_color", "smile"]


def _records(folder: Path) -> list[tuple[bytes, np.ndarray | None]]:
    """(encoded image, label vector or None) of every record, in stored order."""
    info = load_info(folder)
    out = []
    for raw in tf.data.TFRecordDataset([str(folder / s.file) for s in info.shards]):
        example = tf.train.Example.FromString(raw.numpy())
        features = example.features.feature
        labels = np.array(features["labels"].float_list.value) if "labels" in features else None
        out.append((features["image"].bytes_list.value[0], labels))
    return out


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("syn") / "tags", count=24, resolution=16, seed=0,
                                    labels=LABELS)


def test_every_face_carries_its_true_hair_colour_and_smile(labelled):
    info = load_info(labelled)
    hair = [f"{c}_hair" for c in HAIR_COLORS]
    assert info.labels.names == [*hair, "smile"] and info.labels.groups == {"hair_color": hair}
    assert info.meta["synthetic"]["labels"] == LABELS
    records = _records(labelled)
    rows = np.array([labels for _, labels in records])
    for i, row in enumerate(rows):
        params = sample_face_params(np.random.default_rng([0, i]))
        assert hair[int(np.argmax(row[:13]))] == f"{params.hair_color_name}_hair" and row[:13].sum() == 1
        assert row[13] == float(params.mouth_style == "smile")
    assert info.labels.counts == rows.sum(axis=0).astype(int).tolist() and 0 < rows[:, 13].sum() < 24


def test_labels_change_no_pixel(labelled, tmp_path):
    plain = ensure_synthetic_dataset(tmp_path / "plain", count=24, resolution=16, seed=0)
    assert [image for image, _ in _records(plain)] == [image for image, _ in _records(labelled)]
    assert all(labels is None for _, labels in _records(plain))


def test_face_tags_name_every_attribute():
    params = sample_face_params(np.random.default_rng([0, 3]))
    tags = face_tags(params)
    assert [sum(t in members for t in tags) for members in LABEL_GROUPS.values()] == [1, 1, 1, 1]
    assert ("blush" in tags) == params.blush
    space = label_space(["mouth", "blush", "hair_style"])
    assert space.names[:5] == list(LABEL_GROUPS["mouth"]) and space.names[5] == "blush"


def test_reuse_never_trades_labels(labelled, tmp_path):
    ensure_synthetic_dataset(labelled, count=24, resolution=16, seed=0, labels=LABELS)  # reused
    ensure_synthetic_dataset(labelled, count=24, resolution=16, seed=0)  # the same images serve unlabelled
    with pytest.raises(DatasetError, match=r"was made with labels \['hair_color', 'smile'\] \(requested "
                                           r"labels \['mouth'\]\); delete"):
        ensure_synthetic_dataset(labelled, count=24, resolution=16, seed=0, labels=["mouth"])
    plain = ensure_synthetic_dataset(tmp_path / "plain", count=4, resolution=16, seed=0)
    with pytest.raises(DatasetError, match=r"made with no labels \(requested labels \['hair_color', 'smile"):
        ensure_synthetic_dataset(plain, count=4, resolution=16, seed=0, labels=LABELS)
    with pytest.raises(DatasetError, match="unknown synthetic label 'glasses' \\(choose from hair_color, "):
        ensure_synthetic_dataset(tmp_path / "new", count=4, resolution=16, seed=0, labels=["glasses"])
    assert not (tmp_path / "new").exists()


def test_synthetic_tags_config_builds_a_labelled_dataset(tmp_path):
    cfg = to_object(compose_config("train", "dataset=synthetic_tags", "dataset.synthetic.count=8",
                                   "dataset.synthetic.resolution=16"))
    assert cfg.dataset.path == "datasets/synthetic-16-n8-seed0-tags"
    assert cfg.dataset.synthetic.labels == LABELS
    cfg = to_object(compose_config("train", "dataset=synthetic_tags", "dataset.synthetic.count=8",
                                   "dataset.synthetic.resolution=16", f"dataset.path={tmp_path / 'ds'}"))
    resolve_dataset(cfg)
    assert load_info(tmp_path / "ds").labels.dim == 14
