"""sample.py tasks on a tiny 16×16 snapshot of each architecture: random, figures, video, rank, invert, edit,
metrics (StyleGAN2's own sampling details: test_stylegan2_sample.py)."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import cells, run_task, size_of, write_images
from hydra.errors import ConfigCompositionException

from stylegan_exp.data.images import load_image, save_image
from stylegan_exp.grid import to_uint8
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.sample.figures import layer_ranges, mix_dlatents
from stylegan_exp.sample.generate import generate, seed_dlatents, synthesize
from stylegan_exp.sample.video import smooth_random_walk

RES = 16


@pytest.fixture(scope="module", params=["stylegan", "stylegan2"])
def snapshot(request, random_snapshots) -> Path:
    """A randomly initialised 16² snapshot of each architecture whose noise inputs matter."""
    return random_snapshots(request.param)


def test_layer_ranges_scale_from_the_paper():
    assert layer_ranges(18) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}
    for layers in range(4, 19, 2):
        r = layer_ranges(layers)
        assert r["coarse"][0] == 0 and r["fine"][1] == layers
        assert r["coarse"][1] == r["middle"][0] and r["middle"][1] == r["fine"][0]
        assert all(stop > start for start, stop in r.values())


def test_mix_dlatents_rows_take_source_styles():
    src = np.random.RandomState(0).randn(2, 6, 3)
    dst = np.random.RandomState(1).randn(4, 6, 3)
    mixed = mix_dlatents(src, dst, (0, 2))
    assert mixed.shape == (2, 4, 6, 3)
    for i in range(2):
        for j in range(4):
            np.testing.assert_array_equal(mixed[i, j, :2], src[i, :2])
            np.testing.assert_array_equal(mixed[i, j, 2:], dst[j, 2:])


def test_smooth_random_walk_is_smooth_normalised_and_loops():
    rough = smooth_random_walk(np.random.RandomState(0), 64, (3, 8), 0.0)
    smooth = smooth_random_walk(np.random.RandomState(0), 64, (3, 8), 4.0)
    assert smooth.shape == (64, 3, 8) and smooth.dtype == np.float32
    assert np.sqrt(np.mean(np.square(smooth))) == pytest.approx(1.0, rel=1e-4)
    step = np.abs(np.diff(smooth, axis=0)).mean()
    assert step < 0.3 * np.abs(np.diff(rough, axis=0)).mean()
    assert np.abs(smooth[0] - smooth[-1]).mean() < 2 * step  # the clip loops


def test_random_task_files_shapes_and_determinism(snapshot, tmp_path):
    first = run_task(snapshot, tmp_path / "a", "seeds=[3,1,2]", "batch_size=2")
    assert sorted(p.name for p in first) == ["example-1.png", "example-2.png", "example-3.png"]
    assert load_image(first[0]).shape == (RES, RES, 3)
    again = run_task(snapshot, tmp_path / "b", "seed_range=[1,4]", "batch_size=16")
    for path in first:  # same seed, same image, whatever the batch
        np.testing.assert_array_equal(load_image(path), load_image(tmp_path / "b" / path.name))
    assert len(again) == 3


def test_psi_zero_gives_one_image_for_every_seed(snapshot):
    Gs = network(load_snapshot(snapshot), "Gs")
    same = generate(Gs, list(range(6)), psi=0.0, cutoff=None)
    assert all(np.array_equal(same[0], image) for image in same[1:])
    varied = generate(Gs, list(range(6)), psi=1.0, cutoff=None)
    assert not np.array_equal(varied[0], varied[1])


def test_figures_scale_with_resolution(snapshot, tmp_path):
    paths = run_task(snapshot, tmp_path, "task=figures", "task.uncurated_seeds=[0,1,2,3,4]",
                     "task.uncurated_width=3", "task.mixing_sources=[1,2]",
                     "task.mixing_destinations=[3,4,5]",
                     "task.truncation_seeds=[1,2,3]", "task.truncation_psis=[1,0,-1]",
                     "task.noise_seeds=[1,2]", "task.noise_variants=2", "task.noise_std_samples=8")
    Gs = network(load_snapshot(snapshot), "Gs")
    assert Gs.num_layers == 6 and layer_ranges(Gs.num_layers) == {"coarse": (0, 1), "middle": (1, 3),
                                                                 "fine": (3, 6)}
    names = {p.name: p for p in paths}
    assert set(names) == {"uncurated.png", "style-mixing-coarse.png", "style-mixing-middle.png",
                          "style-mixing-fine.png", "truncation.png", "noise.png"}
    assert size_of(names["uncurated.png"]) == (3 * RES, 2 * RES)
    assert size_of(names["style-mixing-coarse.png"]) == (4 * RES, 3 * RES)
    assert size_of(names["truncation.png"]) == (3 * RES, 3 * RES)
    assert size_of(names["noise.png"]) == (4 * RES, 2 * RES)

    trunc = cells(names["truncation.png"])
    assert np.array_equal(trunc[0, 1], trunc[1, 1]) and np.array_equal(trunc[0, 1], trunc[2, 1])  # ψ = 0
    assert not np.array_equal(trunc[0, 0], trunc[1, 0])

    mixing = cells(names["style-mixing-fine.png"])
    assert mixing[0, 0].max() == 0  # empty corner
    assert not np.array_equal(mixing[1, 1], mixing[2, 1])  # rows differ by their source

    noise = cells(names["noise.png"])
    assert not np.array_equal(noise[0, 0], noise[0, 1])  # fresh noise changes details
    assert noise[0, 3].max() > 0  # the std-dev map is not blank

    (big,) = run_task(snapshot, tmp_path / "big", "task=figures", "task.kinds=[uncurated]",
                      "task.uncurated_seeds=[0,1]", "task.uncurated_width=2", "task.cell_size=32")
    assert size_of(big) == (64, 32)


def test_style_mixing_cells_take_coarse_styles_from_their_source(snapshot):
    Gs = network(load_snapshot(snapshot), "Gs")
    coarse = layer_ranges(Gs.num_layers)["coarse"]
    src, dst = seed_dlatents(Gs, [1, 2]), seed_dlatents(Gs, [3, 4, 5])
    mixed = mix_dlatents(src, dst, coarse)
    np.testing.assert_array_equal(mixed[:, :, : coarse[1]], np.repeat(src[:, None, : coarse[1]], 3, axis=1))
    whole = to_uint8(synthesize(Gs, mix_dlatents(src, dst, (0, Gs.num_layers))))
    np.testing.assert_array_equal(whole[:, 0], to_uint8(synthesize(Gs, src)))


def test_videos_have_expected_frames(snapshot, tmp_path):
    import imageio.v3 as iio

    run = tmp_path / "train-run"
    run.mkdir()
    shutil.copy(snapshot, run / snapshot.name)
    for kimg in (0, 1, 2):
        save_image(np.full((32, 64, 3), 40 * kimg, np.uint8), run / f"fakes{kimg:06d}.png")
    paths = run_task(run / snapshot.name, tmp_path / "out", "task=video", "task.duration_sec=0.5",
                     "task.fps=8", "task.grid_width=2", "task.grid_height=2",
                     "task.mixing_destinations=[1,2]", "task.progress_max_width=32")
    frames = {p.name: iio.imread(p) for p in paths}
    assert sorted(frames) == ["interpolation.mp4", "mixing_coarse.mp4", "mixing_fine.mp4", "progress.mp4"]
    assert frames["interpolation.mp4"].shape == (4, 2 * RES, 2 * RES, 3)
    assert frames["mixing_coarse.mp4"].shape == (4, 2 * RES, 3 * RES, 3)
    assert frames["mixing_fine.mp4"].shape[0] == 4
    assert frames["progress.mp4"].shape == (3, 16, 32, 3)


def test_rank_writes_sorted_csv_sheet_and_rejects(snapshot, tmp_path):
    folder = tmp_path / "images"
    write_images(folder, 6, 0)
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("ignored")
    csv_path, sheet = run_task(snapshot, tmp_path / "out", "task=rank", f"task.folder={folder}",
                               "task.reject_percent=34", "task.sheet_count=2", "task.batch_size=5")
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 6 and [int(r["rank"]) for r in rows] == list(range(1, 7))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 6
    rejected = sorted(Path(r["path"]).name for r in rows if r["rejected"] == "1")
    assert len(rejected) == 3 and sorted(p.name for p in (folder / "rejected").iterdir()) == rejected
    assert size_of(sheet) == (2 * 64, 2 * 64)


def test_bad_input_is_one_line_error(snapshot, tmp_path):
    with pytest.raises(SystemExit, match="network snapshot not found: /no/such.npz"):
        run_task(Path("/no/such.npz"), tmp_path / "a")
    with pytest.raises(SystemExit, match="image folder not found"):
        run_task(snapshot, tmp_path / "b", "task=rank", f"task.folder={tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no images"):
        run_task(snapshot, tmp_path / "c", "task=invert", f"task.images={tmp_path / 'empty'}")
    with pytest.raises(ConfigCompositionException, match="task.kinds"):  # rejected before any work
        run_task(snapshot, tmp_path / "d", "task=figures", "task.kinds=[nope]")
    with pytest.raises(SystemExit, match="group folder not found"):
        run_task(snapshot, tmp_path / "e", "task=edit", "task.group_a=/no/a", "task.group_b=/no/b")


@pytest.mark.slow
def test_invert_lowers_reconstruction_error(snapshot, tmp_path):
    Gs = network(load_snapshot(snapshot), "Gs")
    folder = tmp_path / "targets"
    folder.mkdir()
    for seed in (7, 8):
        save_image(generate(Gs, [seed], psi=0.7, cutoff=None)[0], folder / f"seed{seed}.png")
    run_task(snapshot, tmp_path / "inv", "task=invert", f"task.images={folder}",
             "task.inversion.encoder_steps=40", "task.inversion.steps=40",
             "task.inversion.d_feature_weight=0.1")
    rows = list(csv.DictReader((tmp_path / "inv" / "inversion.csv").open()))
    assert len(rows) == 2
    for row in rows:
        assert float(row["final_mse"]) < 0.5 * float(row["encoder_mse"])
    out = tmp_path / "inv" / "seed7"
    assert np.load(out / "w.npy").shape == (Gs.num_layers, 16)
    assert size_of(out / "side-by-side.png") == (3 * RES, RES)
    assert size_of(out / "reconstruction.png") == (RES, RES)

    # The follow-up edit: one group given as images (inverted with the saved encoder), one as w.npy dirs.
    run_task(snapshot, tmp_path / "edit", "task=edit", f"task.group_a={folder}",
             f"task.group_b={tmp_path / 'inv'}",
             f"task.inversion.encoder={tmp_path / 'inv' / 'encoder.npz'}", "task.inversion.steps=5",
             "task.seeds=[0]", "task.strengths=[0,1]")
    assert size_of(tmp_path / "edit" / "edit.png") == (2 * RES, RES)


def test_edit_moves_along_group_difference(snapshot, tmp_path):
    Gs = network(load_snapshot(snapshot), "Gs")
    w = seed_dlatents(Gs, [1, 2, 3])
    delta = np.random.RandomState(0).randn(*w.shape[1:]).astype(np.float32)
    for group, offset in (("a", 0.0), ("b", 1.0)):
        for i, one in enumerate(w):
            (tmp_path / group / f"img{i}").mkdir(parents=True)
            np.save(tmp_path / group / f"img{i}" / "w.npy", one + offset * delta)
    direction, grid = run_task(snapshot, tmp_path / "out", "task=edit", f"task.group_a={tmp_path / 'a'}",
                               f"task.group_b={tmp_path / 'b'}", "task.seeds=[0,1]")
    np.testing.assert_allclose(np.load(direction), delta, atol=1e-5)
    edits = cells(grid)
    assert edits.shape[:2] == (2, 5)
    model = load_snapshot(snapshot).model  # sampled with the snapshot's own truncation
    unedited = generate(Gs, [0, 1], psi=model.truncation_psi, cutoff=model.truncation_cutoff)
    np.testing.assert_allclose(edits[:, 2].astype(int), unedited.astype(int), atol=1)


def test_metrics_task_writes_swd_for_the_snapshot(snapshot, tiny_dataset, tmp_path):
    (path,) = run_task(snapshot, tmp_path / "m", "task=metrics", f"task.dataset={tiny_dataset}",
                       "task.metrics.num_images=64", "task.metrics.swd.nhoods_per_image=16",
                       f"task.metrics.cache_dir={tmp_path / 'cache'}")
    results = json.loads(path.read_text())
    assert path.name == "metrics.json" and results["metrics/swd_mean"] > 0
    assert set(results) >= {"metrics/swd_16", "metrics/swd_mean"}
