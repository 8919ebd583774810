"""The dyadic-robust interval over images, against a dense reference written from its definition."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from facebench_tasks import stats
from facebench_tasks.relative_difference import relative_difference_interval


def dense_reference(distances, second, img1, img2, confidence=0.95) -> tuple[float, float]:
    """The relative difference's interval from dense matrices, influences by finite differences."""
    n = len(distances)

    def statistic(weights: np.ndarray) -> float:
        m1 = np.average(distances[~second], weights=weights[~second])
        m2 = np.average(distances[second], weights=weights[second])
        return (m1 - m2) / (m1 + m2)

    estimate, step = statistic(np.ones(n)), 1e-6
    influence = np.array([(statistic(np.ones(n) + step * np.eye(n)[p]) - estimate) / step for p in range(n)])
    share = np.array(
        [[len({img1[p], img2[p]} & {img1[q], img2[q]}) for q in range(n)] for p in range(n)], float
    )
    shares_one = (share > 0).astype(float)
    variance = influence @ shares_one @ influence
    # the map from values to influences, and the statistic's gradient, by finite differences too
    gradient = np.zeros(n)
    transform = np.zeros((n, n))
    for q in range(n):
        bumped = distances.copy()
        bumped[q] += step
        m1, m2 = bumped[~second].mean(), bumped[second].mean()
        gradient[q] = ((m1 - m2) / (m1 + m2) - estimate) / step
    m1, m2 = distances[~second].mean(), distances[second].mean()
    slopes = (
        np.where(second, -2 * m1, 2 * m2) / (m1 + m2) ** 2 / np.where(second, second.sum(), (~second).sum())
    )
    for p, q in itertools.product(range(n), repeat=2):
        transform[p, q] = slopes[p] * ((p == q) - (second[p] == second[q]) / (second == second[p]).sum())
    covariance = share + np.eye(n)
    spread = shares_one @ transform @ covariance @ transform.T
    variance *= (gradient @ covariance @ gradient) / np.trace(spread)
    freedom = np.trace(spread) ** 2 / np.sum(spread * spread.T)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, freedom) * math.sqrt(variance)
    return estimate - half, estimate + half


def test_matches_the_dense_reference() -> None:
    rng = np.random.default_rng(4)
    first = rng.integers(0, 20, 30)
    img1 = [f"{i}.png" for i in first]
    img2 = [f"{(i + j) % 20}.png" for i, j in zip(first, rng.integers(1, 20, 30), strict=True)]
    img1[3], img2[3] = img1[2], img2[2]  # the same two images twice
    distances = rng.uniform(0.2, 1.0, 30)
    second = np.arange(30) % 3 == 0
    got = relative_difference_interval(distances, second, np.array(img1), np.array(img2))
    np.testing.assert_allclose(got, dense_reference(distances, second, img1, img2), rtol=1e-4)


def test_overlap_products_count_shared_images() -> None:
    image1, image2 = np.array([0, 0, 1, 3, 0]), np.array([1, 2, 2, 4, 1])
    values = np.array([1.0, 10.0, 100.0, 1000.0, 10000.0])
    counted, shared = stats.image_overlap_products(values, image1, image2, 5)
    # pair 0 (images 0, 1) shares both images with pair 4, one with pairs 1 and 2, none with 3
    assert counted[0] == 2 * 1 + 10 + 100 + 2 * 10000
    assert shared[0] == 1 + 10 + 100 + 10000
    assert shared[3] == counted[3] / 2 == 1000


def test_interval_needs_two_images() -> None:
    low, high = stats.pair_graph_interval(
        1.0, [(np.array([1.0, 2.0]), np.array([True, False]), 1.0)], np.array([0, 0]), np.array([0, 0]), 1
    )
    assert math.isnan(low) and math.isnan(high)


def test_relative_difference_interval_stays_in_its_range() -> None:
    # distances near zero in the second group: the t interval alone reaches 1.033
    rng = np.random.default_rng(0)
    img1 = rng.integers(0, 8, 12)
    img2 = (img1 + rng.integers(1, 8, 12)) % 8
    second = np.arange(12) % 2 == 1
    distances = np.where(second, rng.uniform(0.0, 0.05, 12), rng.uniform(0.5, 3, 12))
    low, high = relative_difference_interval(distances, second, img1.astype(str), img2.astype(str))
    assert 0.9 < low < high == 1.0


def test_no_interval_when_every_pair_shares_an_image() -> None:
    # three images, six pairs, each sharing an image with every other: no variance to estimate
    distances = np.array([2.0, 2.1, 0.01, 0.02, 1.9, 0.015])
    second = np.array([False, False, True, True, False, True])
    img1, img2 = np.array(["a", "b", "c", "a", "c", "b"]), np.array(["b", "c", "a", "c", "b", "a"])
    assert all(math.isnan(v) for v in relative_difference_interval(distances, second, img1, img2))


@pytest.mark.parametrize("confidence", [0.8, 0.99])
def test_confidence_sets_the_t_quantile(confidence: float) -> None:
    rng = np.random.default_rng(5)
    img1, img2 = rng.integers(0, 12, 30), rng.integers(12, 24, 30)
    distances, second = rng.uniform(0.2, 1.0, 30), np.arange(30) % 2 == 1
    names1, names2 = img1.astype(str), img2.astype(str)
    wide = relative_difference_interval(distances, second, names1, names2, confidence=0.95)
    other = relative_difference_interval(distances, second, names1, names2, confidence=confidence)
    centre = np.mean(wide)
    assert np.mean(other) == pytest.approx(centre)
    assert (other[1] - other[0] < wide[1] - wide[0]) == (confidence < 0.95)
