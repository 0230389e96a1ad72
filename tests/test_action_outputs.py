"""SaveFakes, SaveSnapshot and EvaluateMetrics on a tiny StyleGAN: what each writes, names and logs."""

import numpy as np
import tensorflow as tf
from action_helpers import RecordingTracker, tick
from PIL import Image

from stylegan_exp.config import MetricsConfig
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot, network
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.train.actions import every
from stylegan_exp.train.actions.evaluate_metrics import EvaluateMetrics
from stylegan_exp.train.actions.save_fakes import SaveFakes
from stylegan_exp.train.actions.save_snapshot import SaveSnapshot
from stylegan_exp.train.checkpoint import TrainState
from stylegan_exp.train.output_names import OutputNames

MODEL = StyleGANConfig(name="tiny", fmap_base=32, fmap_max=8, latent_size=8, dlatent_size=8, mapping_layers=1,
                       mapping_fmaps=8)


def test_fakes_grid_at_the_level_of_detail_named_by_kimg(tmp_path):
    Gs, tracker, state, names = build_generator(MODEL, 16), RecordingTracker(), TrainState(nimg=1024), \
        OutputNames()
    grid_z = tf.Variable(np.random.RandomState(0).randn(6, 8).astype(np.float32))
    action = SaveFakes(Gs, grid_z, 3, tmp_path, names, state, tracker, every(2))
    action(tick(level=3, lod=1.0))
    state.nimg = 1536
    second = action.write(4, 0.0)
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["fakes000001.png", "fakes000001_536.png"]
    assert Image.open(second).size == (3 * 16, 2 * 16)
    assert [key for key, _, _ in tracker.images] == ["fakes", "fakes"]
    assert action.due(tick(index=2)) and not action.due(tick(index=3))
    assert not SaveFakes(Gs, grid_z, 3, tmp_path / "other", names, state, tracker, every(1),
                         writer=False).write(4, 0.0).exists()


def test_snapshot_holds_the_networks_and_their_lod(tmp_path):
    G, D, Gs = build_generator(MODEL, 16), build_discriminator(MODEL, 16), build_generator(MODEL, 16)
    tracker, state = RecordingTracker(), TrainState(nimg=2500)
    action = SaveSnapshot({"G": G, "D": D, "Gs": Gs}, MODEL, tmp_path, OutputNames(), state, tracker,
                          every(1), artifact="tiny-snapshot")
    action(tick(lod=0.5))
    assert action.last == tmp_path / "network-snapshot-000002.npz"
    snap = load_snapshot(action.last)
    assert (snap.kimg, snap.lod, snap.model) == (2.5, 0.5, MODEL)
    z = tf.constant(np.random.RandomState(1).randn(2, 8).astype(np.float32))
    loaded = network(snap, "Gs")
    loaded.lod = 0.0
    np.testing.assert_allclose(loaded(z, 4, 0.0, randomize_noise=False), Gs(z, 4, 0.0, randomize_noise=False),
                               atol=1e-6)
    assert tracker.artifacts == [(action.last, "tiny-snapshot", "model")]


def test_metrics_wait_for_the_final_resolution(tmp_path, caplog):
    tracker = RecordingTracker()
    action = EvaluateMetrics(build_generator(MODEL, 16), tmp_path, MetricsConfig(name="swd", kinds=["swd"]),
                             TrainState(), tracker, every(1))
    caplog.set_level("INFO")
    assert action.evaluate(3) == {} and "metrics wait for the final resolution (now 8²)" in caplog.text
    assert tracker.logged == []
