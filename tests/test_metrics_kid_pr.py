"""KID against its definition written out pair by pair; precision/recall against brute force (SciPy) and on
toy distributions whose answers are known."""

import numpy as np
import pytest
import scipy.spatial.distance

from stylegan_exp.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from stylegan_exp.metrics.pr import kth_neighbour_radii, precision_recall, squared_distances

# ---------------------------------------------------------------------------------------------- KID


def mmd2_by_pairs(x: np.ndarray, y: np.ndarray) -> float:
    """Bińkowski et al.'s unbiased estimator, one kernel value at a time."""
    m, d = len(x), x.shape[1]

    def k(a, b):
        return (a @ b / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_polynomial_kernel_is_cubic_in_the_scaled_dot_product() -> None:
    x, y = np.array([[1.0, 2.0]]), np.array([[3.0, -1.0], [0.0, 0.0]])
    np.testing.assert_allclose(polynomial_kernel(x, y), [[(1 / 2 + 1) ** 3, 1.0]])


def test_mmd2_matches_the_definition_pair_by_pair() -> None:
    rng = np.random.RandomState(0)
    x, y = rng.randn(12, 5), rng.randn(12, 5) * 1.5 + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(mmd2_by_pairs(x, y), rel=1e-10)
    with pytest.raises(ValueError, match="same size"):
        mmd2_unbiased(x, y[:5])


def test_kid_with_one_whole_subset_is_the_mmd_of_the_sets() -> None:
    rng = np.random.RandomState(1)
    real, fake = rng.randn(30, 4), rng.randn(30, 4) + 0.5
    mean, std = kid(real, fake, num_subsets=1, max_subset_size=1000, rng=np.random.RandomState(0))
    assert mean == pytest.approx(mmd2_by_pairs(fake, real), rel=1e-9) and std == 0.0


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.RandomState(2)
    real = rng.randn(1000, 16)
    same = kid(real, rng.randn(1000, 16), 20, 100, np.random.RandomState(0))
    shifted = [kid(real, rng.randn(1000, 16) + s, 20, 100, np.random.RandomState(0))[0] for s in (.2, .5, 1)]
    assert abs(same[0]) < 3 * same[1] / np.sqrt(20)  # within noise of zero (can be negative)
    assert same[1] > 0 and shifted == sorted(shifted) and shifted[0] > abs(same[0])


# ---------------------------------------------------------------------------------------------- PR


def test_squared_distances_and_radii_match_brute_force() -> None:
    rng = np.random.RandomState(3)
    a, b = rng.randn(37, 6).astype(np.float32), rng.randn(23, 6).astype(np.float32)
    np.testing.assert_allclose(squared_distances(a, b), scipy.spatial.distance.cdist(a, b, "sqeuclidean"),
                               rtol=1e-4, atol=1e-4)
    full = scipy.spatial.distance.cdist(a, a, "sqeuclidean")
    expected = np.sort(full, axis=1)[:, 3]  # column 0 is the point itself
    for rows in (1, 5, 1000):  # blocking does not change the answer
        np.testing.assert_allclose(kth_neighbour_radii(a, 3, rows), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="k = 3 needs more than k points"):
        kth_neighbour_radii(a[:3], 3, 10)


def test_precision_recall_on_toy_distributions_with_known_answers() -> None:
    rng = np.random.RandomState(4)
    mode_a = (rng.randn(200, 8) * 0.1).astype(np.float32)
    real = np.concatenate([mode_a, mode_a[::-1] + 10.0])  # two modes far apart
    assert precision_recall(real, real, 3, 128) == (1.0, 1.0)
    # Fakes that are the reals of one mode: all realistic, half the data missed.
    assert precision_recall(real, mode_a, 3, 64) == (1.0, 0.5)
    # Fakes far from every real: nothing realistic, nothing covered.
    assert precision_recall(real, real + 100.0, 3, 64) == (0.0, 0.0)
    # Every real, plus as many fakes in a mode the data does not have: precision halves, recall stays.
    assert precision_recall(real, np.concatenate([real, real + 50.0]), 3, 64) == (0.5, 1.0)


def test_precision_recall_grow_with_k() -> None:
    rng = np.random.RandomState(5)
    real, fake = rng.randn(300, 6), rng.randn(300, 6) * 1.3 + 0.2
    results = [precision_recall(real, fake, k, 100) for k in (1, 3, 10)]
    assert [p for p, _ in results] == sorted(p for p, _ in results)
    assert [r for _, r in results] == sorted(r for _, r in results)
