"""sample.py truncates as the snapshot's own architecture does unless the user says otherwise: StyleGAN's
G_style ψ 0.7 below style layer 8, StyleGAN2's G_main ψ 0.5 on every layer, a pickle's own truncation kwargs
where it has them. Checked where the conventions differ (more than 8 style layers: 64² and up) against
independent NumPy references of the original networks (tests/original_stylegan*.py) and for our own StyleGAN2
snapshot."""

from pathlib import Path

import numpy as np
import original_stylegan
import original_stylegan2
import pytest
import tensorflow as tf
from conftest import compose_config, tiny_model
from omegaconf import OmegaConf

from stylegan_exp.data.images import load_image
from stylegan_exp.grid import to_uint8
from stylegan_exp.models import build_discriminator, build_generator, load_snapshot, network, save_snapshot
from stylegan_exp.models.stylegan.config import StyleGANConfig
from stylegan_exp.models.stylegan2.config import StyleGAN2Config
from stylegan_exp.nets.weights import variables_by_path
from stylegan_exp.run import start_sampling
from stylegan_exp.sample.export_reader import Exported
from stylegan_exp.sample.generate import seed_latents
from stylegan_exp.sample.truncation import describe_truncation

SEEDS = [1, 2]


def sample_png(snapshot: Path | str, run_dir: Path, *overrides: str) -> np.ndarray:
    """sample.py's example-<seed>.png for SEEDS, as uint8 [N, R, R, C]."""
    paths = start_sampling(compose_config("sample", f"snapshot={snapshot}", f"seeds={SEEDS}", *overrides),
                           str(run_dir))
    return np.stack([load_image(p) for p in paths])


def assert_same_images(got: np.ndarray, want_float: np.ndarray) -> None:
    """Equal up to uint8 rounding of float differences ≤ 1e-3 (both references compute in float64)."""
    diff = np.abs(got.astype(int) - to_uint8(want_float).astype(int))
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.01, (diff.max(), np.mean(diff > 0))


def assert_differ(a: np.ndarray, b: np.ndarray) -> None:
    """The two truncations give visibly different images (so the comparisons above can tell them apart)."""
    assert np.abs(to_uint8(a).astype(int) - to_uint8(b).astype(int)).max() > 8


def test_stylegan2_pickle_samples_as_g_main_unless_told_otherwise(tmp_path, caplog):
    """64²: 10 style layers. G_main's ψ 0.5 on every layer by default; a cutoff on the command line wins
    (and ψ stays the snapshot's)."""
    kw = original_stylegan2.MODELS["res64_Gskip_Dskip"]
    raw = original_stylegan2.write_pkl(tmp_path / "net.pkl", kw)
    z = seed_latents(SEEDS, kw["latent_size"])

    def ref(psi, cutoff=None):
        return original_stylegan2.ref_g_main(raw["Gs"], kw, z, psi, cutoff).transpose(0, 2, 3, 1)

    assert_differ(ref(0.5), ref(0.5, 8))
    caplog.set_level("INFO")
    assert_same_images(sample_png(tmp_path / "net.pkl", tmp_path / "default"), ref(0.5))
    assert ("sampling 2 seeds with psi=0.5 (the snapshot's model config), cutoff=every layer (the snapshot's "
            "model config)") in caplog.text
    recorded = OmegaConf.load(tmp_path / "default" / "config.yaml")  # the values used, not `???`
    assert recorded.truncation_psi == 0.5 and recorded.truncation_cutoff is None

    cut8 = sample_png(tmp_path / "net.pkl", tmp_path / "cut8", "truncation_cutoff=8")
    assert_same_images(cut8, ref(0.5, 8))
    assert ("sampling 2 seeds with psi=0.5 (the snapshot's model config), cutoff=8 of 10 style layers (set "
            "on the command line; the snapshot's model config has every layer)") in caplog.text

    # The imported model config records G_main's defaults, or the pickle's own static kwargs where present.
    imported = load_snapshot(tmp_path / "net.pkl").model
    assert (imported.truncation_psi, imported.truncation_cutoff) == (0.5, None)
    original_stylegan2.write_pkl(tmp_path / "own.pkl", kw, edit=lambda gkw, _syn: gkw.update(
        truncation_psi=0.6, truncation_cutoff=3))
    own = load_snapshot(tmp_path / "own.pkl").model
    assert (own.truncation_psi, own.truncation_cutoff) == (0.6, 3)


def test_stylegan_pickle_samples_as_g_style_with_its_own_kwargs(tmp_path):
    """128²: 12 style layers. G_style's ψ 0.7 below layer 8, or the pickle's static truncation kwargs;
    `truncation_cutoff=null` on the command line still means every layer."""
    kw = original_stylegan.MODELS["res128_fused"]
    raw = original_stylegan.write_pkl(tmp_path / "net.pkl", kw)
    own = original_stylegan.write_pkl(tmp_path / "own.pkl", kw, seed=1,
                                      gs_kwargs={"truncation_psi": 0.5, "truncation_cutoff": 4})
    z = seed_latents(SEEDS, kw["latent_size"])

    def ref(gs, psi, cutoff):
        return original_stylegan.ref_g_style(gs["Gs"], kw, z, psi, cutoff).transpose(0, 2, 3, 1)

    assert_differ(ref(raw, 0.7, 8), ref(raw, 0.7, 12))
    assert_same_images(sample_png(tmp_path / "net.pkl", tmp_path / "default"), ref(raw, 0.7, 8))
    imported = load_snapshot(tmp_path / "own.pkl").model
    assert (imported.truncation_psi, imported.truncation_cutoff) == (0.5, 4)
    # The pickle's ψ, every layer as the command line says (not the pickle's 4 nor G_style's 8).
    assert_differ(ref(own, 0.5, 12), ref(own, 0.7, 12))
    assert_same_images(sample_png(tmp_path / "own.pkl", tmp_path / "all", "truncation_cutoff=null"),
                       ref(own, 0.5, 12))


RES = 64
MODEL = tiny_model("stylegan2")


@pytest.fixture(scope="module")
def stylegan2_npz(tmp_path_factory) -> Path:
    """Our own 64² StyleGAN2 snapshot with noise and w_avg that matter (both are zero at init)."""
    tf.random.set_seed(3)
    G = build_generator(MODEL, RES)
    for name, var in variables_by_path(G).items():
        if name.endswith("noise/weight"):
            var.assign(0.5)
    G.w_avg.assign(np.random.RandomState(0).randn(*G.w_avg.shape).astype(np.float32) * 0.5)
    path = tmp_path_factory.mktemp("run") / "network-snapshot-000000.npz"
    return save_snapshot(path, {"G": G, "D": build_discriminator(MODEL, RES), "Gs": G}, model=MODEL,
                         resolution=RES, num_channels=3, kimg=0.0)


def our_reference(snapshot: Path, seeds: list[int], psi: float, cutoff: int | None) -> np.ndarray:
    """Our StyleGAN2 networks, the truncation spelled out in NumPy: w_avg + ψ (w − w_avg) below `cutoff`."""
    Gs = network(load_snapshot(snapshot), "Gs")
    w = Gs.map(tf.constant(seed_latents(seeds, Gs.latent_size))).numpy()
    layers = np.arange(Gs.num_layers)[None, :, None] < (Gs.num_layers if cutoff is None else cutoff)
    w_avg = Gs.w_avg.numpy()
    w = np.where(layers, w_avg + psi * (w - w_avg), w)
    return Gs.synthesis(tf.constant(w), Gs.resolution_log2, randomize_noise=False).numpy()


def test_own_stylegan2_snapshot_samples_and_figures_with_its_truncation(stylegan2_npz, tmp_path):
    want = our_reference(stylegan2_npz, SEEDS, 0.5, None)
    assert_differ(want, our_reference(stylegan2_npz, SEEDS, 0.5, 8))
    assert_same_images(sample_png(stylegan2_npz, tmp_path / "random"), want)
    (grid,) = start_sampling(compose_config(
        "sample", f"snapshot={stylegan2_npz}", "task=figures", "task.kinds=[uncurated]",
        f"task.uncurated_seeds={SEEDS}", "task.uncurated_width=2"), str(tmp_path / "figures"))
    cells = load_image(grid).reshape(RES, 2, RES, 3).transpose(1, 0, 2, 3)
    assert_same_images(cells, want)


@pytest.mark.slow
def test_export_defaults_to_the_snapshots_truncation(stylegan2_npz, tmp_path):
    """export.json records the snapshot's truncation, and generate.py's Exported uses it by default."""
    start_sampling(compose_config("sample", f"snapshot={stylegan2_npz}", "task=export",
                                  "task.formats=[saved_model]", "task.verify_seeds=[]"), str(tmp_path))
    exported = Exported(tmp_path / "saved_model")
    assert {k: exported.truncation[k] for k in ("truncation_psi", "truncation_cutoff")} == {
        "truncation_psi": 0.5, "truncation_cutoff": 10}
    want = our_reference(stylegan2_npz, SEEDS, 0.5, None)
    assert_same_images(exported.generate(seeds=SEEDS)["images"], want)


def test_truncation_is_described_with_its_origin():
    sg, sg2 = StyleGANConfig(name="a"), StyleGAN2Config(name="b")
    assert describe_truncation(0.7, 8, sg, 12) == ("psi=0.7 (the snapshot's model config), cutoff=8 of 12 "
                                                   "style layers (the snapshot's model config)")
    assert describe_truncation(0.5, 8, sg2, 10) == (
        "psi=0.5 (the snapshot's model config), cutoff=8 of 10 style layers (set on the command line; the "
        "snapshot's model config has every layer)")
    assert describe_truncation(0.7, None, sg2, 6).startswith(
        "psi=0.7 (set on the command line; the snapshot's model config has 0.5), cutoff=every layer (the")
    assert "cutoff=every layer (the snapshot's model config)" in describe_truncation(0.7, 8, sg, 8)
