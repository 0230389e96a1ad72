"""Sampling a conditional snapshot by tags: sample.py tags=[…] on the random and figures tasks, truncation
toward the labels' average w, one-line errors for tags that cannot be sampled."""

from __future__ import annotations

import logging

import imageio.v2 as imageio
import numpy as np
import pytest
from conftest import cells, run_task
from labelled_faces import HAIR_TAGS, LABELS

from stylegan_exp.data.images import load_image
from stylegan_exp.models import build_discriminator, build_generator, model_config, save_snapshot
from stylegan_exp.sample.labels import label_center, map_labelled, truncate_toward

TINY = {"name": "tiny", "fmap_base": 64, "fmap_max": 16, "latent_size": 16, "dlatent_size": 16,
        "mapping_layers": 2, "mapping_fmaps": 16}


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def conditional(request, tmp_path_factory):
    model = model_config(request.param, TINY)
    nets = {"G": build_generator(model, 16, 3, c_dim=14), "D": build_discriminator(model, 16, 3, c_dim=14),
            "Gs": build_generator(model, 16, 3, c_dim=14)}
    path = tmp_path_factory.mktemp("cond") / "network-snapshot-000001.npz"
    return save_snapshot(path, nets, model=model, resolution=16, num_channels=3, kimg=1.0, labels=LABELS)


def _images(paths):
    return np.stack([load_image(p) for p in sorted(paths)])


def test_random_task_samples_the_tags(conditional, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        blonde = _images(run_task(conditional, tmp_path / "a", "tags=[blonde_hair]", "seeds=[0,1,2]"))
    assert "tags blonde_hair; truncation toward the average w of these labels" in caplog.text
    again = _images(run_task(conditional, tmp_path / "b", "tags=[blonde_hair]", "seeds=[0,1,2]"))
    red = _images(run_task(conditional, tmp_path / "c", "tags=[red_hair,smile]", "seeds=[0,1,2]"))
    assert blonde.shape == (3, 16, 16, 3) and np.array_equal(blonde, again)
    assert np.abs(blonde.astype(int) - red).max() > 0


def test_psi_zero_gives_each_label_its_average(conditional, tmp_path):
    """Truncation pulls toward the label's own average w: at ψ 0 every seed is that average's image."""
    blonde = _images(run_task(conditional, tmp_path / "a", "tags=[blonde_hair]", "seeds=[0,1,2]",
                              "truncation_psi=0"))
    red = _images(run_task(conditional, tmp_path / "b", "tags=[red_hair]", "seeds=[0,1,2]",
                           "truncation_psi=0"))
    assert np.array_equal(blonde[0], blonde[1]) and np.array_equal(blonde[0], blonde[2])
    assert np.abs(blonde[0].astype(int) - red[0]).max() > 0


@pytest.mark.parametrize("overrides, message", [
    (["tags=[golden_hair]"], "unknown tag 'golden_hair'; this dataset's tags are: black_hair, dark_brown"),
    (["tags=[red_hair,blonde_hair]"], "blonde_hair, red_hair are values of the one group 'hair_color'"),
    ([], "is conditional: give tags=[…] from its vocabulary: black_hair"),
    (["task=rank", "task.folder=.", "tags=[smile]"], "task=rank does not take labels yet"),
    (["task=video", "task.kinds=[tags]", "task.tag_sets=[[smile]]"], "needs at least two tag sets"),
    (["task=figures", "task.kinds=[labels]", "task.label_group=mouth"], "unknown tag group 'mouth'"),
])
def test_bad_tags_are_one_line(conditional, tmp_path, overrides, message):
    with pytest.raises(SystemExit) as exc:
        run_task(conditional, tmp_path / "run", *overrides)
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "run").exists()


def test_tags_on_an_unconditional_snapshot_are_one_line(random_snapshots, tmp_path):
    with pytest.raises(SystemExit, match=r"tags=\['smile'\] needs a conditional snapshot; .* unconditional"):
        run_task(random_snapshots("stylegan"), tmp_path / "run", "tags=[smile]")


def test_labels_figure_has_a_row_per_group_value(conditional, tmp_path):
    (path,) = run_task(conditional, tmp_path / "f", "task=figures", "task.kinds=[labels]",
                       "task.uncurated_width=3", "tags=[smile]")
    grid = cells(path)
    assert path.name == "labels.png" and grid.shape[:2] == (len(HAIR_TAGS), 3)
    assert len({grid[r, 0].tobytes() for r in range(len(HAIR_TAGS))}) == len(HAIR_TAGS)


def test_label_center_is_the_mean_w_of_the_label(conditional):
    from stylegan_exp.models import load_snapshot, network

    Gs = network(load_snapshot(conditional), "Gs")
    c = np.eye(14, dtype=np.float32)[3]
    z = np.random.RandomState(123).randn(4096, 16).astype(np.float32)
    expected = map_labelled(Gs, z, np.repeat(c[None], 4096, axis=0), 512)[:, 0].mean(axis=0)
    assert np.allclose(label_center(Gs, c), expected, atol=1e-5)
    w = np.ones([2, 6, 16], np.float32)
    out = truncate_toward(w, np.zeros(16, np.float32), 0.5, 4)
    assert np.allclose(out[:, :4], 0.5) and np.allclose(out[:, 4:], 1.0)


def test_tags_video_moves_between_tag_sets(conditional, tmp_path):
    (path,) = run_task(conditional, tmp_path / "v", "task=video", "task.kinds=[tags]",
                       "task.tag_sets=[[red_hair],[blonde_hair,smile]]", "task.duration_sec=0.4",
                       "task.fps=10", "task.grid_width=2", "task.grid_height=1")
    frames = imageio.mimread(path)
    assert path.name == "tags.mp4" and len(frames) == 4
    assert np.abs(frames[0].astype(int) - frames[2]).mean() > 1  # the second stop differs from the first
