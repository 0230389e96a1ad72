"""sample.py's tasks on a tiny 16² StyleGAN3 snapshot (config R: 1×1 convolutions, radial filters): random
images, figures (its style layers are num_layers + 2; no noise figure), videos, inversion and export, through
the same entry point as every model; and the input transform that turns the generated image."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config

from stylegan_exp.data.images import load_image, save_image
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot, network, save_snapshot
from stylegan_exp.models.stylegan3.config import StyleGAN3Config
from stylegan_exp.run import start_sampling
from stylegan_exp.sample.generate import generate

RES = 16
MODEL = StyleGAN3Config(name="tiny_r", cbase=256, cmax=16, latent_size=16, dlatent_size=16, mapping_fmaps=16,
                        num_layers=4, conv_kernel=1, channel_scale=2, use_radial_filters=True)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    tf.random.set_seed(0)
    G = build_generator(MODEL, RES)
    G.w_avg.assign(np.random.RandomState(0).randn(MODEL.dlatent_size).astype(np.float32) * 0.3)
    path = tmp_path_factory.mktemp("run") / "network-snapshot-000000.npz"
    return save_snapshot(path, {"G": G, "D": build_discriminator(MODEL, RES), "Gs": G}, model=MODEL,
                         resolution=RES, num_channels=3, kimg=0.0)


def run_task(snapshot: Path, run_dir: Path, *overrides: str) -> list[Path]:
    return start_sampling(compose_config("sample", f"snapshot={snapshot}", *overrides), str(run_dir))


def test_random_images_and_truncation(snapshot, tmp_path):
    paths = run_task(snapshot, tmp_path, "seeds=[1,2,3]", "batch_size=2")
    images = [load_image(p) for p in paths]
    assert images[0].shape == (RES, RES, 3) and not np.array_equal(images[0], images[1])
    Gs = network(load_snapshot(snapshot), "Gs")
    assert Gs.num_layers == MODEL.num_layers + 2
    same = generate(Gs, [1, 2, 3], psi=0.0, cutoff=None)
    assert all(np.array_equal(same[0], image) for image in same[1:])
    np.testing.assert_array_equal(generate(Gs, [1], psi=0.5, cutoff=None)[0],
                                  generate(Gs, [1, 4], psi=0.5, cutoff=None)[0])  # batch-independent


def test_figures_without_the_noise_figure(snapshot, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        paths = run_task(snapshot, tmp_path, "task=figures", "task.uncurated_seeds=[0,1,2]",
                         "task.uncurated_width=3", "task.mixing_sources=[1,2]",
                         "task.mixing_destinations=[3,4]", "task.truncation_seeds=[1,2]",
                         "task.truncation_psis=[1,0]")
    assert {p.name for p in paths} == {"uncurated.png", "truncation.png", "style-mixing-coarse.png",
                                       "style-mixing-middle.png", "style-mixing-fine.png"}
    assert "no noise figure" in caplog.text
    assert load_image(tmp_path / "uncurated.png").shape == (RES, 3 * RES, 3)


def test_videos(snapshot, tmp_path):
    import imageio.v3 as iio

    paths = run_task(snapshot, tmp_path, "task=video", "task.kinds=[interpolation,mixing_coarse]",
                     "task.duration_sec=0.5", "task.fps=4", "task.grid_width=2", "task.grid_height=1",
                     "task.mixing_destinations=[1,2]")
    frames = {p.name: iio.imread(p) for p in paths}
    assert frames["interpolation.mp4"].shape == (2, RES, 2 * RES, 3)
    assert frames["mixing_coarse.mp4"].shape == (2, 2 * RES, 3 * RES, 3)


@pytest.mark.slow
def test_invert_lowers_the_reconstruction_error(snapshot, tmp_path):
    Gs = network(load_snapshot(snapshot), "Gs")
    save_image(generate(Gs, [7], psi=0.5, cutoff=None)[0], tmp_path / "seed7.png")
    run_task(snapshot, tmp_path / "inv", "task=invert", f"task.images={tmp_path / 'seed7.png'}",
             "task.inversion.encoder_steps=20", "task.inversion.steps=30", "task.inversion.encoder_batch=4")
    (row,) = list(csv.DictReader((tmp_path / "inv" / "inversion.csv").open()))
    assert float(row["final_mse"]) < 0.5 * float(row["encoder_mse"])
    assert np.load(tmp_path / "inv" / "seed7" / "w.npy").shape == (Gs.num_layers, MODEL.dlatent_size)
    _, edited = run_task(snapshot, tmp_path / "edit", "task=edit", f"task.group_a={tmp_path / 'inv'}",
                         f"task.group_b={tmp_path / 'inv'}", "task.seeds=[0]", "task.strengths=[0,1]")
    assert load_image(edited).shape == (RES, 2 * RES, 3)


def test_rank_scores_a_folder_with_d(snapshot, tmp_path):
    for i in range(3):
        save_image(np.random.RandomState(i).randint(0, 256, (RES, RES, 3)).astype(np.uint8),
                   tmp_path / "images" / f"img-{i}.png")
    csv_path, _ = run_task(snapshot, tmp_path / "out", "task=rank", f"task.folder={tmp_path / 'images'}")
    scores = [float(r["score"]) for r in csv.DictReader(csv_path.open())]
    assert len(scores) == 3 and len(set(scores)) == 3 and scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_export_to_tflite_matches_gs(snapshot, tmp_path):
    """TFLite is the strictest converter (the Fourier input's einsum broke its dynamic batch); SavedModel
    and ONNX export the same graph (measured: all within 3e-7 of Gs)."""
    run_task(snapshot, tmp_path, "task=export", "task.formats=[tflite]", "task.tflite_weights=[float32]",
             "task.verify_seeds=[0,1]")
    verified = json.loads((tmp_path / "export.json").read_text())["files"]["tflite_float32"]["verified"]
    assert verified["z"]["max_abs_float_error"] < 1e-4 and verified["z"]["max_uint8_error"] == 0


def test_translating_the_input_moves_the_image(snapshot):
    """set_transform as gen_images.py's --translate: a shift by 4/16 of the width moves the Fourier
    features by 4 pixels; identity restores them."""
    Gs = network(load_snapshot(snapshot), "Gs")
    w = Gs.mapping(tf.random.normal([1, MODEL.latent_size]))
    before = Gs.synthesis.input(w).numpy()
    Gs.set_transform(translate=(4 / RES, 0.0))
    after = Gs.synthesis.input(w).numpy()
    np.testing.assert_allclose(after[:, :, 4:], before[:, :, :-4], atol=1e-4)
    Gs.set_transform()
    np.testing.assert_allclose(Gs.synthesis.input(w).numpy(), before, atol=1e-6)
