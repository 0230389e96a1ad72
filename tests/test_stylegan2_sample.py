"""Every sample.py task on a tiny 16² StyleGAN2 snapshot; the inversion's StyleGAN2 noise regularization."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from test_sample_tasks import cells, run_task, size_of, write_images

from stylegan_exp.config import InversionConfig
from stylegan_exp.data.images import save_image
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot, network, save_snapshot
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.sample.figures import layer_ranges
from stylegan_exp.sample.generate import generate
from stylegan_exp.sample.invert import Inverter, noise_regularization

RES = 16
MODEL = StyleGAN2Config(name="tiny", fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                        mapping_layers=2, mapping_fmaps=16)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A randomly initialised 16² StyleGAN2 snapshot whose noise inputs matter (strengths are 0 at init)."""
    G, D = build_generator(MODEL, RES), build_discriminator(MODEL, RES)
    for name, var in variables_by_path(G).items():
        if name.endswith("noise/weight"):
            var.assign(0.5)
    G.w_avg.assign(np.random.RandomState(0).randn(*G.w_avg.shape).astype(np.float32) * 0.1)
    path = tmp_path_factory.mktemp("run") / "network-snapshot-000000.npz"
    return save_snapshot(path, {"G": G, "D": D, "Gs": G}, model=MODEL, resolution=RES, num_channels=3,
                         kimg=0.0)


def test_random_figures_and_videos(snapshot, tmp_path):
    (example,) = run_task(snapshot, tmp_path / "random", "seeds=[3]")
    assert size_of(example) == (RES, RES)
    Gs = network(load_snapshot(snapshot), "Gs")
    assert Gs.num_layers == 6 and layer_ranges(Gs.num_layers) == {"coarse": (0, 1), "middle": (1, 3),
                                                                 "fine": (3, 6)}
    paths = run_task(snapshot, tmp_path / "figures", "task=figures", "task.uncurated_seeds=[0,1,2,3]",
                     "task.uncurated_width=2", "task.mixing_sources=[1,2]", "task.mixing_destinations=[3,4]",
                     "task.truncation_seeds=[1,2]", "task.truncation_psis=[1,0]", "task.noise_seeds=[1]",
                     "task.noise_variants=2", "task.noise_std_samples=8")
    names = {p.name: p for p in paths}
    trunc = cells(names["truncation.png"])
    assert np.array_equal(trunc[0, 1], trunc[1, 1]) and not np.array_equal(trunc[0, 0], trunc[1, 0])
    noise = cells(names["noise.png"])
    assert not np.array_equal(noise[0, 0], noise[0, 1]) and noise[0, 3].max() > 0
    fine = cells(names["style-mixing-fine.png"])
    assert not np.array_equal(fine[1, 1], fine[2, 1])

    run = tmp_path / "train-run"
    run.mkdir()
    shutil.copy(snapshot, run / snapshot.name)
    save_image(np.zeros((16, 32, 3), np.uint8), run / "fakes000000.png")
    videos = run_task(run / snapshot.name, tmp_path / "video", "task=video", "task.duration_sec=0.25",
                      "task.fps=8", "task.grid_width=2", "task.grid_height=1", "task.mixing_destinations=[1]")
    assert sorted(p.name for p in videos) == ["interpolation.mp4", "mixing_coarse.mp4", "mixing_fine.mp4",
                                              "progress.mp4"]


def test_rank_and_metrics(snapshot, tmp_path):
    from stylegan_exp.data.synthetic import ensure_synthetic_dataset

    write_images(tmp_path / "images", 6, 0)
    csv_path, _ = run_task(snapshot, tmp_path / "rank", "task=rank", f"task.folder={tmp_path / 'images'}",
                           "task.batch_size=5")
    scores = [float(r["score"]) for r in csv.DictReader(csv_path.open())]
    assert len(scores) == 6 and scores == sorted(scores, reverse=True) and len(set(scores)) == 6

    data = ensure_synthetic_dataset(tmp_path / "syn", count=32, resolution=RES, seed=0)
    (path,) = run_task(snapshot, tmp_path / "metrics", "task=metrics", f"task.dataset={data}",
                       "task.metrics.num_images=32", "task.metrics.swd.nhoods_per_image=16",
                       f"task.metrics.cache_dir={tmp_path / 'cache'}")
    assert json.loads(path.read_text())["metrics/swd_mean"] > 0


def test_noise_regularization_is_the_projectors():
    """Σ over maps and 2× box pyramids down to 8×8 of mean(v·roll(v, 1, x))² + mean(v·roll(v, 1, y))²."""
    rng = np.random.default_rng(0)
    maps = [rng.standard_normal((1, size, size, 1)).astype(np.float32) for size in (4, 16, 32)]
    expected = 0.0
    for v in maps:
        v = v[0, :, :, 0].astype(np.float64)
        while True:
            expected += np.mean(v * np.roll(v, 1, axis=1)) ** 2 + np.mean(v * np.roll(v, 1, axis=0)) ** 2
            if v.shape[0] <= 8:
                break
            v = v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2).mean(axis=(1, 3))
    assert float(noise_regularization([tf.constant(m) for m in maps])) == pytest.approx(expected, rel=1e-5)
    smooth = tf.ones([1, 16, 16, 1])  # fully correlated "noise" costs far more than white noise
    assert float(noise_regularization([smooth])) > 100 * float(noise_regularization([tf.constant(maps[1])]))


def test_inversion_regularizes_noise_for_stylegan2_only(snapshot):
    cfg = InversionConfig(steps=1)
    Gs = network(load_snapshot(snapshot), "Gs")
    assert Inverter(Gs, None, cfg).noise_reg_weight == 1e5
    assert Inverter(Gs, None, InversionConfig(optimize_noise=False)).noise_reg_weight == 0.0
    sg1 = StyleGANConfig(name="tiny", fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                         mapping_layers=2, mapping_fmaps=16)
    assert Inverter(build_generator(sg1, RES), None, cfg).noise_reg_weight == 0.0


@pytest.mark.slow
def test_invert_and_edit(snapshot, tmp_path):
    Gs = network(load_snapshot(snapshot), "Gs")
    folder = tmp_path / "targets"
    folder.mkdir()
    for seed in (7, 8):
        save_image(generate(Gs, [seed], psi=0.7, cutoff=None)[0], folder / f"seed{seed}.png")
    run_task(snapshot, tmp_path / "inv", "task=invert", f"task.images={folder}",
             "task.inversion.encoder_steps=40", "task.inversion.steps=40")
    rows = list(csv.DictReader((tmp_path / "inv" / "inversion.csv").open()))
    assert all(float(r["final_mse"]) < 0.5 * float(r["encoder_mse"]) for r in rows)
    assert np.load(tmp_path / "inv" / "seed7" / "w.npy").shape == (Gs.num_layers, 16)
    run_task(snapshot, tmp_path / "edit", "task=edit", f"task.group_a={folder}",
             f"task.group_b={tmp_path / 'inv'}", f"task.inversion.encoder={tmp_path / 'inv' / 'encoder.npz'}",
             "task.inversion.steps=5", "task.seeds=[0]", "task.strengths=[0,1]")
    assert size_of(tmp_path / "edit" / "edit.png") == (2 * RES, RES)


@pytest.mark.slow
def test_export_of_a_stylegan2_snapshot_matches_gs(snapshot, tmp_path):
    """task=export (SavedModel, TFLite, ONNX): every file checks itself against Gs at export time."""
    from test_export import FLOAT_TOLERANCE

    run_task(snapshot, tmp_path, "task=export", "task.formats=[saved_model,tflite,onnx]")
    meta = json.loads((tmp_path / "export.json").read_text())
    assert meta["arch"] == "stylegan2" and set(meta["files"]) == set(FLOAT_TOLERANCE)
    for key, entry in meta["files"].items():
        worst = max(v["max_abs_float_error"] for v in entry["verified"].values())
        assert worst <= FLOAT_TOLERANCE[key], (key, worst)


@pytest.mark.slow
def test_ppl_of_a_stylegan2_generator(snapshot):
    from test_metrics_ppl import stand_in_perceptual

    from stylegan_exp.config import PPLConfig
    from stylegan_exp.metrics.ppl import fresh_noise, perceptual_path_length

    G = network(load_snapshot(snapshot), "Gs")
    maps = [v for v in G.variables if v.name.startswith("noise")]
    assert len(maps) == G.num_layers - 1  # one per synthesis layer (toRGB has none)
    with fresh_noise(G) as redraw:
        redraw(np.random.RandomState(0))
    value = perceptual_path_length(G, stand_in_perceptual(), PPLConfig(num_samples=16, minibatch=16), seed=0)
    assert np.isfinite(value) and value > 0
