"""Every sampling task on a 1:2 snapshot: figures, video, rank, invert (its encoder too) and the explorer
give portraits; a portrait folder is cropped to the aspect, not to a square."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from conftest import compose_config, run_task, size_of, tiny_model
from PIL import Image

from stylegan_exp.aspect import parse_aspect
from stylegan_exp.data.images import save_image
from stylegan_exp.models import build_discriminator, build_generator, save_snapshot
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.sample.invert import load_encoder
from stylegan_exp.sample.rank import load_for_network

PORTRAIT = parse_aspect("1:2")


@pytest.fixture(scope="module")
def portrait_snapshot(tmp_path_factory):
    """A random tiny StyleGAN at 16×32 whose noise and w_avg matter, and a folder of three portraits."""
    root = tmp_path_factory.mktemp("portrait")
    tf.random.set_seed(0)
    model = tiny_model()
    G = build_generator(model, 16, 3, aspect=PORTRAIT)
    for name, var in variables_by_path(G).items():
        if name.endswith("noise/weight"):
            var.assign(tf.fill(var.shape, 0.5))
    G.w_avg.assign(np.random.RandomState(0).randn(*G.w_avg.shape).astype(np.float32) * 0.1)
    path = save_snapshot(root / "network-snapshot-000000.npz",
                         {"G": G, "D": build_discriminator(model, 16, 3, aspect=PORTRAIT), "Gs": G},
                         model=model,
                         resolution=16, num_channels=3, kimg=0.0, aspect=PORTRAIT)
    folder = root / "images"
    folder.mkdir()
    rng = np.random.RandomState(1)
    for i, shape in enumerate([(64, 32, 3), (40, 40, 3), (30, 50, 3)]):
        save_image(rng.randint(0, 256, shape).astype(np.uint8), folder / f"img-{i}.png")
    return path, folder


def test_a_folder_image_is_cropped_to_the_aspect(tmp_path):
    image = (np.arange(40 * 40 * 3) % 256).astype(np.uint8).reshape(40, 40, 3)
    save_image(image, tmp_path / "square.png")
    loaded = load_for_network(tmp_path / "square.png", 20, 3, PORTRAIT)
    assert loaded.shape == (40, 20, 3)  # the centre 20 columns, full height: no resampling
    np.testing.assert_allclose(loaded, image[:, 10:30] / 127.5 - 1.0, atol=1e-6)


@pytest.mark.slow
def test_figures_and_video_are_portraits(portrait_snapshot, tmp_path):
    snapshot, _ = portrait_snapshot
    outputs = run_task(snapshot, tmp_path / "figures", "task=figures", "task.kinds=[uncurated,style_mixing]",
                       "task.uncurated_seeds=[0,1,2]", "task.uncurated_width=3",
                       "task.mixing_ranges=[coarse]", "task.mixing_sources=[1,2]",
                       "task.mixing_destinations=[3]")
    sizes = {p.name: size_of(p) for p in outputs}
    assert sizes["uncurated.png"] == (3 * 16, 1 * 32)
    assert sizes["style-mixing-coarse.png"] == (2 * 16, 3 * 32)  # destinations + 1 across, sources + 1 down
    (video,) = run_task(snapshot, tmp_path / "video", "task=video", "task.kinds=[interpolation]",
                        "task.duration_sec=0.2", "task.fps=10", "task.grid_width=2", "task.grid_height=1")
    import imageio.v3 as iio

    frames = iio.imread(video)
    assert frames.shape[1:3] == (32, 32)  # two 16×32 cells side by side


@pytest.mark.slow
def test_rank_and_invert_take_portraits(portrait_snapshot, tmp_path):
    snapshot, folder = portrait_snapshot
    csv_path, sheet = run_task(snapshot, tmp_path / "rank", "task=rank", f"task.folder={folder}")
    assert len(csv_path.read_text().splitlines()) == 4
    assert size_of(sheet)[1] % 32 == 0 and size_of(sheet)[0] % 16 == 0
    outputs = run_task(snapshot, tmp_path / "invert", "task=invert", f"task.images={folder / 'img-0.png'}",
                       "task.inversion.encoder_steps=3", "task.inversion.steps=2",
                       "task.inversion.encoder_batch=4")
    assert {size_of(p) for p in outputs if p.name == "reconstruction.png"} == {(16, 32)}
    encoder = load_encoder(tmp_path / "invert" / "encoder.npz")
    assert encoder.aspect == PORTRAIT


def test_the_explorer_serves_portraits(portrait_snapshot):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from stylegan_exp.config import to_object
    from stylegan_exp.sample.explore import serve
    from stylegan_exp.sample.explore.app import make_app
    from stylegan_exp.sample.tasks import open_snapshot
    from stylegan_exp.sample.truncation import adopt_truncation

    snapshot, _ = portrait_snapshot
    cfg = compose_config("sample", "task=explore", f"snapshot={snapshot}", "batch_size=4")
    snap = open_snapshot(cfg.snapshot, cfg.outputs_root, cfg.name, cfg.full_network)
    cfg = to_object(adopt_truncation(cfg, snap.model))
    found = serve.explorer_of(cfg, snap)
    with TestClient(make_app(found, serve.settings(cfg, snap, found))) as client:
        assert client.get("/api/info").json()["size"] == "16×32"
        face = Image.open(io.BytesIO(client.get("/api/face.png", params={"seed": 4}).content))
        assert face.size == (16, 32)
