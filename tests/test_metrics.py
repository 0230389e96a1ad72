"""FID against SciPy, SWD on known image sets, every metric through evaluate(), the balance watch."""

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import tensorflow as tf
from conftest import tiny_model

from stylegan_exp.config import (
    BalanceConfig,
    FIDConfig,
    KIDConfig,
    MetricsConfig,
    NetworkFile,
    PPLConfig,
    PRConfig,
    SWDConfig,
)
from stylegan_exp.data.writer import pack_arrays
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics import evaluate as evaluate_module
from stylegan_exp.metrics import features as cache
from stylegan_exp.metrics import fid as fid_lib
from stylegan_exp.metrics.evaluate import Networks, count_tag, evaluate, real_batches
from stylegan_exp.metrics.ppl import lpips_distance
from stylegan_exp.metrics.swd import (
    SWD,
    laplacian_pyramid,
    pyr_down,
    pyr_up,
    sliced_wasserstein,
    swd_resolutions,
)
from stylegan_exp.models import build_generator
from stylegan_exp.train.balance import BalanceWatch


def scipy_fid(mu1, s1, mu2, s2) -> float:
    """The usual reference (TTUR / NVlabs): scipy's general matrix square root, real part."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(covmean)))


def smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """Blurry random colour fields in [-1, 1]: structure at every scale, unlike white noise."""
    rng = np.random.RandomState(seed)
    x = rng.randn(n, size // 4, size // 4, 3).astype(np.float32)
    x = tf.image.resize(x, (size, size), method="bicubic").numpy()
    return np.clip(x * 0.5, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------- FID


@pytest.mark.parametrize(("n", "dim"), [(2000, 16), (40, 64)])  # (40, 64): singular covariances
def test_frechet_distance_matches_scipy_on_gaussian_features(n: int, dim: int) -> None:
    rng = np.random.RandomState(0)
    a = rng.randn(n, dim)
    b = rng.randn(n, dim) @ rng.randn(dim, dim) * 0.5 + rng.randn(dim)
    sa, sb = fid_lib.feature_statistics(a), fid_lib.feature_statistics(b)
    expected = scipy_fid(*sa, *sb)
    assert fid_lib.frechet_distance(*sa, *sb) == pytest.approx(expected, rel=1e-6)
    assert fid_lib.frechet_distance(*sa, *sa) == pytest.approx(0.0, abs=1e-6 * np.trace(sa[1]))


def test_frechet_distance_closed_form_for_diagonal_gaussians() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid_lib.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)


def tiny_feature_net(seed: int = 0):
    """A fixed random conv net standing in for a feature network (no download)."""
    import keras

    tf.random.set_seed(seed)
    net = keras.Sequential([
        keras.Input((None, None, 3)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
    ])
    return lambda images: net(images, training=False).numpy()


def test_fid_with_a_tiny_feature_network_is_zero_for_the_same_images_and_grows_with_a_shift() -> None:
    features = tiny_feature_net()
    reals = smooth_images(256, 16, seed=1)
    real = features(reals)
    same = fid_lib.fid(real, np.concatenate([features(reals[:128]), features(reals[128:])]))
    shifted = [fid_lib.fid(real, features(np.clip(reals + d, -1, 1))) for d in (0.1, 0.3, 0.6)]
    assert abs(same) < 1e-6
    assert 0 < shifted[0] < shifted[1] < shifted[2]


# ---------------------------------------------------------------------------------------------- SWD


def test_pyramid_filters_match_scipy_mirror_convolution() -> None:
    g = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256
    x = np.random.RandomState(0).rand(2, 16, 16, 3).astype(np.float32) * 255
    expected = scipy.ndimage.convolve(x, g[None, :, :, None], mode="mirror")[:, ::2, ::2]
    np.testing.assert_allclose(pyr_down(x), expected, atol=1e-3)
    small = pyr_down(x)
    zeros = np.zeros_like(x)
    zeros[:, ::2, ::2] = small
    expected = scipy.ndimage.convolve(zeros, 4 * g[None, :, :, None], mode="mirror")
    np.testing.assert_allclose(pyr_up(small), expected, atol=1e-3)


def test_laplacian_pyramid_reconstructs_the_image() -> None:
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype(np.float32) * 255
    levels = laplacian_pyramid(x, 3)
    assert [lv.shape[1] for lv in levels] == [32, 16, 8]
    rebuilt = levels[-1]
    for band in levels[-2::-1]:
        rebuilt = pyr_up(rebuilt) + band
    np.testing.assert_allclose(rebuilt, x, atol=1e-2)


def test_swd_levels_follow_the_resolution() -> None:
    assert swd_resolutions(128) == [128, 64, 32, 16]
    assert swd_resolutions(16) == [16]
    with pytest.raises(ValueError, match="at least 16px"):
        swd_resolutions(8)


def test_sliced_wasserstein_grows_with_a_shift_of_the_point_cloud() -> None:
    rng = np.random.RandomState(0)
    a = rng.randn(4000, 20).astype(np.float32)
    b = rng.randn(4000, 20).astype(np.float32)
    dists = [sliced_wasserstein(a, b + np.float32(d), 2, 64, np.random.RandomState(1))
             for d in (0, 0.5, 1, 2)]
    assert sliced_wasserstein(a, a, 2, 64, np.random.RandomState(1)) == 0.0
    assert dists[0] < 0.05 and dists == sorted(dists)
    # Shifting by d in every component moves the projections on a unit u by d·sum(u), E|sum(u)| ≈ √(2/π).
    assert dists[-1] == pytest.approx(2 * math.sqrt(2 / math.pi), rel=0.15)


def test_swd_is_zero_for_identical_sets_and_grows_with_noise() -> None:
    swd = SWD(32, SWDConfig(nhoods_per_image=64, dir_repeats=2, dirs_per_repeat=64))
    reals = swd.descriptors([smooth_images(64, 32, seed=1)])
    assert [d.shape for d in reals] == [(64 * 64, 7 * 7 * 3)] * 2

    def distance(images: np.ndarray) -> dict[str, float]:
        return swd.distance(reals, swd.descriptors([images]))

    assert distance(smooth_images(64, 32, seed=1)) == {"swd_32": 0.0, "swd_16": 0.0, "swd_mean": 0.0}
    other = smooth_images(64, 32, seed=2)
    noise = np.random.RandomState(3).randn(*other.shape).astype(np.float32)
    noisy = [distance(np.clip(other + s * noise, -1, 1)) for s in (0.0, 0.1, 0.4)]
    fine, means = [d["swd_32"] for d in noisy], [d["swd_mean"] for d in noisy]
    assert fine == sorted(fine) and means == sorted(means)
    assert fine[2] > 2.5 * fine[0]  # noise lives in the finest band; the low-pass residual barely moves


# ---------------------------------------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def smooth_dataset(tmp_path_factory) -> Path:
    images = ((smooth_images(48, 16, seed=5) + 1) * 127.5).round().astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "tiny"
    pack_arrays(images, path)
    return path


def tiny_generator():
    return build_generator(tiny_model(mapping_layers=1), 16, 3)


def test_real_batches_are_a_fixed_subset(smooth_dataset: Path) -> None:
    a = np.concatenate(list(real_batches(smooth_dataset, 16, 20, 8, seed=0)))
    b = np.concatenate(list(real_batches(smooth_dataset, 16, 20, 8, seed=0)))
    assert a.shape == (20, 16, 16, 3) and np.array_equal(a, b)


def stand_in_networks() -> Networks:
    import keras

    tf.random.set_seed(3)
    taps = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, activation="relu")])
    return Networks(inception=("tiny-a", tiny_feature_net(1)), vgg=("tiny-b", tiny_feature_net(2)),
                    perceptual=lpips_distance(lambda x: [taps(x / 127.5 - 1.0)]))


def every_metric(**overrides) -> MetricsConfig:
    return MetricsConfig(name="all", kinds=["swd", "fid", "kid", "pr", "ppl"], num_images=100, minibatch=16,
                         swd=SWDConfig(nhoods_per_image=16, dir_repeats=1, dirs_per_repeat=32),
                         kid=KIDConfig(num_subsets=10, max_subset_size=20), pr=PRConfig(k=3),
                         ppl=PPLConfig(num_samples=40, minibatch=8), **overrides)


def test_count_tag_follows_the_papers_names() -> None:
    assert [count_tag(n) for n in (50000, 10000, 1000, 1024, 48)] == ["50k", "10k", "1k", "1024", "48"]


@pytest.mark.slow
def test_evaluate_logs_every_metric_under_the_papers_names_and_caches_the_real_features(
        smooth_dataset: Path, tmp_path: Path, monkeypatch) -> None:
    networks, G = stand_in_networks(), tiny_generator()
    out = evaluate(G, smooth_dataset, 16, every_metric(), tmp_path, networks=networks)
    assert set(out) == {"metrics/swd_16", "metrics/swd_mean", "metrics/fid48", "metrics/kid48",
                        "metrics/kid48_std", "metrics/pr48_3_precision", "metrics/pr48_3_recall",
                        "metrics/ppl_wend"}
    assert all(np.isfinite(v) for v in out.values())
    assert out["metrics/fid48"] > 0 and out["metrics/ppl_wend"] > 0
    assert 0 <= out["metrics/pr48_3_precision"] <= 1 and 0 <= out["metrics/pr48_3_recall"] <= 1
    (folder,) = tmp_path.iterdir()  # one folder for the dataset, one file per feature network
    assert folder == cache.dataset_folder(tmp_path, smooth_dataset)
    assert sorted(p.name for p in folder.iterdir()) == ["tiny-a-16px-48-seed0.npy",
                                                        "tiny-b-16px-48-seed0.npy"]

    def no_reals(*args, **kwargs):
        raise AssertionError("the cached real features were not used")

    monkeypatch.setattr(evaluate_module, "real_batches", no_reals)
    cfg = every_metric()
    cfg.kinds = ["fid", "kid", "pr"]
    again = evaluate(G, smooth_dataset, 16, cfg, tmp_path, networks=networks)
    assert again == {k: v for k, v in out.items() if k in again}  # same fakes, same cached reals


def test_evaluate_without_a_network_fails_in_one_line_before_any_work(smooth_dataset: Path,
                                                                     tmp_path: Path) -> None:
    url = (tmp_path / "no-such-inception.tgz").as_uri()
    cfg = MetricsConfig(kinds=["swd", "kid"], fid=FIDConfig(standard=NetworkFile(url)))
    cache_dir = tmp_path / "cache"
    with pytest.raises(MetricError) as info:
        evaluate(None, smooth_dataset, 16, cfg, cache_dir)  # no generator needed: nothing was generated
    message = str(info.value)
    assert message.startswith(f"KID needs the 2015-12-05 Inception graph from {url}: ")
    assert "No such file" in message and "\n" not in message
    assert not cache_dir.exists()


def test_evaluate_refuses_unknown_metrics_too_small_images_for_ppl_and_too_few_for_pr(smooth_dataset: Path,
                                                                        tmp_path: Path) -> None:
    with pytest.raises(MetricError, match="unknown metrics \\['is'\\]"):
        evaluate(None, smooth_dataset, 16, MetricsConfig(kinds=["is"]), tmp_path)
    with pytest.raises(MetricError, match="PPL's VGG16 needs images of at least 32px with ppl.crop=True"):
        evaluate(None, smooth_dataset, 16, MetricsConfig(kinds=["ppl"]), tmp_path)
    with pytest.raises(MetricError, match="metrics pr need at least 4 images; .* give 3$"):
        evaluate(None, smooth_dataset, 16, MetricsConfig(kinds=["pr"], num_images=3), tmp_path)


def test_feature_cache_folder_follows_the_dataset(smooth_dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "tiny"
    shutil.copytree(smooth_dataset, copy)
    folder = cache.dataset_folder(tmp_path, copy)
    assert folder == cache.dataset_folder(tmp_path, copy) and folder.name.startswith("tiny-")
    assert folder != cache.dataset_folder(tmp_path, smooth_dataset)  # another place, another dataset
    info = copy / "dataset.json"
    info.write_text(info.read_text() + " ")  # repacked
    assert cache.dataset_folder(tmp_path, copy) != folder
    assert cache.features_path(folder, "a", 16, 48, 0) != cache.features_path(folder, "a", 8, 48, 0)


# ---------------------------------------------------------------------------------------------- balance


def test_balance_watch_warns_once_after_patience_ticks_naming_the_numbers() -> None:
    watch = BalanceWatch(BalanceConfig(d_loss_min=0.05, g_loss_max=8.0, patience_ticks=3))
    assert [watch.update(0.01, 5.0) for _ in range(2)] == [None, None]
    message = watch.update(0.012, 5.0)
    assert message is not None and "D loss 0.012 < 0.05 for 3 ticks" in message and "G loss" not in message
    assert watch.update(0.01, 5.0) is None  # one alert per episode
    assert watch.update(0.5, 5.0) is None  # healthy tick re-arms
    runaway = [watch.update(0.5, 9.5) for _ in range(3)]
    assert runaway == [None, None, "G/D imbalance: G loss 9.5 > 8 for 3 ticks (G runaway)"]


def test_balance_watch_counts_nan_as_bad_and_can_be_disabled() -> None:
    watch = BalanceWatch(BalanceConfig(patience_ticks=1))
    assert "G loss nan" in watch.update(0.7, float("nan"))
    assert BalanceWatch(BalanceConfig(enabled=False, patience_ticks=1)).update(0.0, 100.0) is None
    with pytest.raises(ValueError, match="patience_ticks"):
        BalanceWatch(BalanceConfig(patience_ticks=0))
