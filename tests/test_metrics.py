"""FID against a SciPy reference and a tiny feature network, SWD on known image sets, the balance watch."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
import tensorflow as tf

from stylegan_exp.config import BalanceConfig, MetricsConfig, StyleGANConfig, SWDConfig
from stylegan_exp.data.records import pack_arrays
from stylegan_exp.metrics import MetricError
from stylegan_exp.metrics import evaluate as evaluate_module
from stylegan_exp.metrics import fid as fid_lib
from stylegan_exp.metrics.evaluate import evaluate, real_batches
from stylegan_exp.metrics.swd import (
    SWD,
    laplacian_pyramid,
    pyr_down,
    pyr_up,
    sliced_wasserstein,
    swd_resolutions,
)
from stylegan_exp.nets.build import build_generator
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


def tiny_feature_net() -> fid_lib.FeatureFn:
    """A fixed random conv net standing in for Inception-v3 (no download)."""
    tf.random.set_seed(0)
    import keras

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
    stats = fid_lib.feature_statistics(features(reals))
    same = fid_lib.fid(stats, [reals[:128], reals[128:]], features)
    shifted = [fid_lib.fid(stats, [np.clip(reals + d, -1, 1)], features) for d in (0.1, 0.3, 0.6)]
    assert abs(same) < 1e-6
    assert 0 < shifted[0] < shifted[1] < shifted[2]


def test_missing_inception_weights_fail_with_one_line(monkeypatch) -> None:
    url = "http://127.0.0.1:9/stylegan-exp-test-no-such-weights.h5"  # port 9 (discard): refused at once
    monkeypatch.setattr(fid_lib, "WEIGHTS_URL", url)
    fid_lib._inception_model.cache_clear()
    with pytest.raises(MetricError) as info:
        fid_lib.inception_features(batch_size=4)
    message = str(info.value)
    assert message.startswith(f"FID needs the Inception-v3 ImageNet weights from {url}: ")
    assert "\n" not in message and len(message) > len(url) + 50


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
def tiny_dataset(tmp_path_factory) -> Path:
    images = ((smooth_images(48, 16, seed=5) + 1) * 127.5).round().astype(np.uint8)
    path = tmp_path_factory.mktemp("data") / "tiny"
    pack_arrays(images, path)
    return path


def tiny_generator():
    model = StyleGANConfig(name="tiny", fmap_base=64, fmap_max=16, latent_size=16, dlatent_size=16,
                           mapping_layers=1, mapping_fmaps=16)
    return build_generator(model, 16, 3)


def test_real_batches_are_a_fixed_subset(tiny_dataset: Path) -> None:
    a = np.concatenate(list(real_batches(tiny_dataset, 16, 20, 8, seed=0)))
    b = np.concatenate(list(real_batches(tiny_dataset, 16, 20, 8, seed=0)))
    assert a.shape == (20, 16, 16, 3) and np.array_equal(a, b)


def test_evaluate_logs_every_metric_and_caches_the_real_statistics(tiny_dataset: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    cfg = MetricsConfig(name="both", names=["swd", "fid"], num_images=100, minibatch=16,
                        swd=SWDConfig(nhoods_per_image=16, dir_repeats=1, dirs_per_repeat=32))
    features = tiny_feature_net()
    out = evaluate(tiny_generator(), tiny_dataset, 16, cfg, tmp_path, fid_extractor=("tiny", features))
    assert set(out) == {"metrics/swd_16", "metrics/swd_mean", "metrics/fid"}
    assert all(np.isfinite(v) and v > 0 for v in out.values())
    cached = list(tmp_path.glob("fid-tiny-16px-48-*.npz"))  # capped at the 48 images the dataset has
    assert len(cached) == 1

    def no_reals(*args, **kwargs):
        raise AssertionError("the cached real statistics were not used")

    monkeypatch.setattr(evaluate_module, "real_batches", no_reals)
    cfg.names = ["fid"]
    again = evaluate(tiny_generator(), tiny_dataset, 16, cfg, tmp_path, fid_extractor=("tiny", features))
    assert np.isfinite(again["metrics/fid"])


def test_evaluate_fid_without_weights_fails_before_any_work(tiny_dataset: Path, tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(fid_lib, "WEIGHTS_URL", "http://127.0.0.1:9/stylegan-exp-test-missing.h5")
    fid_lib._inception_model.cache_clear()
    cfg = MetricsConfig(names=["swd", "fid"])
    with pytest.raises(MetricError, match="^FID needs the Inception-v3 ImageNet weights from http://127"):
        evaluate(None, tiny_dataset, 16, cfg, tmp_path)  # no generator needed: nothing was generated
    assert not list(tmp_path.iterdir())


def test_evaluate_refuses_unknown_metrics(tiny_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown metrics \\['is'\\]"):
        evaluate(None, tiny_dataset, 16, MetricsConfig(names=["is"]), tmp_path)


def test_statistics_cache_key_follows_the_dataset(tiny_dataset: Path, tmp_path: Path) -> None:
    p = fid_lib.statistics_path(tmp_path, tiny_dataset, 16, 48)
    assert p == fid_lib.statistics_path(tmp_path, tiny_dataset, 16, 48)
    assert p != fid_lib.statistics_path(tmp_path, tiny_dataset, 8, 48)
    assert p != fid_lib.statistics_path(tmp_path, tiny_dataset, 16, 40)
    assert p != fid_lib.statistics_path(tmp_path, tiny_dataset, 16, 48, "tiny")


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
