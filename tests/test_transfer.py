"""Transfer: source weights + resume_kimg past growing → the first fakes grid is the source's output."""

import numpy as np
import pytest
from conftest import ticks_of
from PIL import Image

from stylegan_exp.config import ConfigError
from stylegan_exp.grid import make_grid, to_uint8
from stylegan_exp.models import load_snapshot, network
from stylegan_exp.train.loop import Trainer


def test_transfer_first_fakes_equal_source_and_start_at_full_resolution(stylegan_run, tiny_cfg, tmp_path):
    source = stylegan_run.snapshots[0]  # saved while 16² was fading in
    assert 0 < load_snapshot(source).lod < 1

    # Tiny schedule: 8→16 is one 0.6 kimg phase, so resume_kimg=5.8 is past growing (lod 0); the
    # first grid is fakes000005.png and the later ticks (≥ 6 kimg) are named fakes000006.png.
    cfg = tiny_cfg("transfer=snapshot", f"transfer.source={source}", "transfer.resume_kimg=5.8",
                   "schedule.total_kimg=6.1", "dataset.mirror=true")
    run_dir = tmp_path / "transfer"
    Trainer(cfg, run_dir).run()

    n = cfg.grid.width * cfg.grid.height
    grid_z = np.random.RandomState(cfg.grid.seed).randn(n, cfg.model.latent_size)
    Gs = network(load_snapshot(source), "Gs")
    Gs.lod = 0.0  # the source was saved while growing, but the transfer starts past growing: every layer
    expected = to_uint8(Gs(grid_z.astype(np.float32), randomize_noise=False).numpy())
    first = np.asarray(Image.open(run_dir / "fakes000005.png"))
    np.testing.assert_array_equal(first, make_grid(expected, cfg.grid.width))

    ticks = ticks_of(run_dir)
    assert ticks[0]["lod"] == 0.0 and ticks[0]["resolution"] == 16
    assert ticks[0]["kimg"] >= 6.0 and ticks[-1]["kimg"] >= 6.1
    assert not (run_dir / "fakes000000.png").exists()


def test_transfer_contradicting_an_explicit_model_override_names_both(stylegan_run, tiny_cfg, tmp_path):
    cfg = tiny_cfg("transfer=snapshot", f"transfer.source={stylegan_run.snapshots[-1]}", "model.fmap_max=8")
    with pytest.raises(ConfigError, match="model.fmap_max=8 contradicts the snapshot's 16"):
        Trainer(cfg, tmp_path / "transfer", explicit={"model.fmap_max"})
