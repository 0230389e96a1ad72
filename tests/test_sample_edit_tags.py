"""task=edit task.tag=…: a tag's direction in W learnt from a labelled packed dataset (probe or inversion),
on a random 16² snapshot and synthetic faces whose hair is black or blonde."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_task, size_of

from stylegan_exp.data.dataset_format import LabelSpace
from stylegan_exp.data.synthetic import HAIR_PALETTE, _hsv, render_face, sample_face_params
from stylegan_exp.data.writer import pack_arrays
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.sample.probe import fit_probe, held_out_split, top_bottom_direction

SPACE = LabelSpace(["black_hair", "blonde_hair", "smile"], {"hair_color": ["black_hair", "blonde_hair"]})


def _labelled_faces(count: int, resolution: int) -> tuple[np.ndarray, list[list[float]]]:
    images, labels = [], []
    for i in range(count):
        p = sample_face_params(np.random.default_rng([5, i]))
        hair = "black" if i % 2 else "blonde"
        p = dataclasses.replace(p, hair_color=_hsv(*HAIR_PALETTE[hair]), hair_color_name=hair)
        images.append(render_face(p, resolution))
        labels.append([float(hair == "black"), float(hair == "blonde"), float(p.mouth_style == "smile")])
    return np.stack(images), labels


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    """80 faces stored at 32² (read at the snapshot's 16²), half with black hair, half blonde."""
    out = tmp_path_factory.mktemp("labelled") / "faces"
    images, labels = _labelled_faces(80, 32)
    pack_arrays(images, out, label_space=SPACE, labels=labels)
    return out


@pytest.fixture(scope="module")
def snapshot(random_snapshots) -> Path:
    return random_snapshots("stylegan", 16)


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def any_snapshot(request, random_snapshots) -> Path:
    return random_snapshots(request.param, 16)


def test_probe_direction_raises_the_tag_score(any_snapshot, labelled, tmp_path):
    snapshot = any_snapshot
    direction, grid, report_path = run_task(
        snapshot, tmp_path / "out", "task=edit", "task.tag=black_hair", f"task.dataset={labelled}",
        "task.probe_samples=64", "task.seeds=[0,1,2]", "task.strengths=[-3,0,3]", "task.min_images=5")
    Gs = network(load_snapshot(snapshot), "Gs")
    assert np.load(direction).shape == (Gs.num_layers, Gs.w_avg.shape[0])
    assert size_of(grid) == (3 * 16, 3 * 16)
    report = json.loads(report_path.read_text())
    assert report["reals_with_tag"] == report["reals_without_tag"] == 40
    assert report["probe_held_out_images"] == 16
    assert report["probe_held_out_balanced_accuracy"] >= 0.9  # black vs blonde hair through random D features
    low, mid, high = report["probe_score_by_strength"]
    assert low < mid < high


@pytest.mark.slow
def test_invert_direction(snapshot, labelled, tmp_path):
    direction, _, report_path = run_task(
        snapshot, tmp_path / "out", "task=edit", "task.tag=blonde_hair", f"task.dataset={labelled}",
        "task.method=invert", "task.invert_images=2", "task.inversion.encoder_steps=5",
        "task.inversion.steps=3",
        "task.seeds=[0]", "task.strengths=[0,1]", "task.min_images=5")
    assert np.abs(np.load(direction)).sum() > 0
    assert json.loads(report_path.read_text())["method"] == "invert"


def test_bad_tag_requests_are_one_line(snapshot, labelled, synthetic_datasets, tmp_path):
    def fails(match: str, *overrides: str) -> None:
        with pytest.raises(SystemExit, match=match):
            run_task(snapshot, tmp_path / "x", "task=edit", *overrides)

    fails(r"unknown tag 'glasses'; this dataset's tags are: black_hair, blonde_hair, smile",
          "task.tag=glasses", f"task.dataset={labelled}")
    fails("has no labels", "task.tag=smile", f"task.dataset={synthetic_datasets(16, 128, 0)}")
    fails(r"tag 'black_hair' is on 40 and missing from 40 of the 80 images .* at least 50 of each",
          "task.tag=black_hair", f"task.dataset={labelled}", "task.min_images=50")
    fails("needs task.dataset", "task.tag=smile")
    fails("unset task.group_a", "task.tag=smile", f"task.dataset={labelled}", "task.group_a=/a")
    fails("needs task.group_a and task.group_b .* or task.tag", "task.group_a=/a")
    small = tmp_path / "small"
    images, labels = _labelled_faces(4, 8)
    pack_arrays(images, small, label_space=SPACE, labels=labels)
    fails(r"holds 8² images; this snapshot makes 16²", "task.tag=smile", f"task.dataset={small}")


def test_probe_separates_and_direction_points_from_low_to_high():
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.3
    x = rng.normal(size=(400, 50)) + 1.5 * y[:, None] * (np.arange(50) < 5)
    train, test = held_out_split(y, 0.25)
    assert not set(train) & set(test) and len(train) + len(test) == 400
    assert abs(y[test].mean() - y.mean()) < 0.02  # both classes held out in proportion
    probe = fit_probe(x[train], y[train])
    assert probe.balanced_accuracy(x[test], y[test]) > 0.85
    w = rng.normal(size=(100, 2, 3))
    scores = w[:, 0, 0]  # the score reads one coordinate: the direction must point along it
    d = top_bottom_direction(w, scores, 0.2)
    assert d[0, 0] > 1.5 and np.abs(d).argmax() == 0


def test_probe_learns_a_rare_weak_tag():
    """5% of images have the tag, faintly: unweighted, logistic regression says "no" to nearly all of them
    (balanced accuracy 0.60 here, 0.54–0.60 over seeds); both classes weighted equally: 0.77 (0.67–0.77)."""
    rng = np.random.default_rng(1)
    y = rng.random(2000) < 0.05
    x = rng.normal(size=(2000, 50)) + 0.8 * y[:, None] * (np.arange(50) < 5)
    train, test = held_out_split(y, 0.25)
    assert fit_probe(x[train], y[train]).balanced_accuracy(x[test], y[test]) > 0.7
