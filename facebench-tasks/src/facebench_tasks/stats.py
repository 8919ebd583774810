"""Statistics the tasks share: verification scores, thresholds, folds, bootstrap intervals.

Conventions: ``labels`` are booleans (True = same identity); ``scores`` are similarities
(higher = more alike); a pair is called "same" when ``score >= threshold``, the convention of
:func:`sklearn.metrics.roc_curve`, so every accuracy here agrees with the ROC it came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import t as t_distribution
from sklearn.metrics import roc_curve

from facebench.errors import ConfigError


def similarity_scores(distances: np.ndarray, bounded: bool) -> np.ndarray:
    """``1 - d`` for bounded metrics (distance = 1 - similarity), ``-d`` otherwise."""
    distances = np.asarray(distances, dtype=float)
    return 1.0 - distances if bounded else -distances


def accuracy_at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """Fraction of pairs classified correctly, "same" when ``score >= threshold``."""
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(labels, dtype=bool)))


def full_roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fpr, tpr, thresholds`` at every distinct score (first threshold is ``+inf``)."""
    return roc_curve(np.asarray(labels, dtype=bool), scores, drop_intermediate=False)


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The finite ROC threshold maximising ``tpr - fpr`` (the first, highest, on ties)."""
    fpr, tpr, thresholds = full_roc(labels, scores)
    finite = np.isfinite(thresholds)
    j = np.where(finite, tpr - fpr, -np.inf)
    return float(thresholds[int(np.argmax(j))])


def best_accuracy_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best accuracy on these pairs.

    Candidates are every distinct score (and ``+inf``, calling every pair "different"). The
    returned threshold is the midpoint between the winning score and the next lower score, so
    the held-out pairs are split halfway between the training pairs (the lowest score is kept as
    is; ties go to the highest threshold).
    """
    labels = np.asarray(labels, dtype=bool)
    fpr, tpr, thresholds = full_roc(labels, scores)
    positives, negatives = labels.sum(), (~labels).sum()
    accuracy = (tpr * positives + (1.0 - fpr) * negatives) / labels.size
    best = int(np.argmax(accuracy))
    if best + 1 < thresholds.size:
        if np.isinf(thresholds[best]):
            return math.inf
        return float((thresholds[best] + thresholds[best + 1]) / 2.0)
    return float(thresholds[best])


def contiguous_folds(labels: np.ndarray, n_folds: int) -> list[np.ndarray]:
    """LFW's folds: fold k holds the k-th contiguous block of the same pairs and of the different pairs.

    Within each label the pairs keep file order and are split into ``n_folds`` blocks whose
    sizes differ by at most one. This gives LFW's ten folds both for its ``pairs.txt`` (each fold
    300 same then 300 different pairs) and for files that list all same pairs, fold by fold,
    before all different pairs.
    """
    labels = np.asarray(labels, dtype=bool)
    blocks = [np.array_split(np.flatnonzero(labels == value), n_folds) for value in (True, False)]
    return [np.sort(np.concatenate([same, different])) for same, different in zip(*blocks, strict=True)]


def cross_validated_accuracy(
    labels: np.ndarray, scores: np.ndarray, n_folds: int = 10, folds: Sequence[np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy per held-out fold, with the threshold chosen on the other folds.

    Returns ``(fold_accuracies, fold_thresholds)``; LFW reports their mean and (population)
    standard deviation. Folds are ``folds`` (one index array per fold) when given, else the
    ``n_folds`` folds of :func:`contiguous_folds`.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    accuracies, thresholds = [], []
    for held_out in contiguous_folds(labels, n_folds) if folds is None else folds:
        train = np.ones(labels.size, dtype=bool)
        train[held_out] = False
        threshold = best_accuracy_threshold(labels[train], scores[train])
        thresholds.append(threshold)
        accuracies.append(accuracy_at_threshold(labels[held_out], scores[held_out], threshold))
    return np.asarray(accuracies), np.asarray(thresholds)


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The rate where false accepts equal false rejects, on the linearly interpolated ROC."""
    fpr, tpr, _ = full_roc(labels, scores)
    gap = fpr - (1.0 - tpr)  # rises from -1 to +1 along the curve
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0 or i == 0:
        return float(fpr[i])
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tar_at_far(labels: np.ndarray, scores: np.ndarray, far: float) -> float:
    """The highest true-accept rate among the thresholds whose false-accept rate is at most
    ``far`` (that is the most lenient such threshold: lowering a threshold never lowers the TAR).

    NaN when there are fewer than ``ceil(1 / far)`` different-identity pairs: a false-accept
    rate of ``far`` cannot be measured on fewer.
    """
    labels = np.asarray(labels, dtype=bool)
    if (~labels).sum() < math.ceil(1.0 / far - 1e-9):
        return math.nan
    fpr, tpr, _ = full_roc(labels, scores)
    return float(tpr[fpr <= far].max())


def check_confidence(confidence: float) -> None:
    """A confidence level for an interval must lie strictly between 0 and 1."""
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie between 0 and 1, not {confidence!r}")


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n_units: int,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``statistic(indices)`` over resamples of ``n_units`` units.

    Each resample draws ``n_units`` unit indices with replacement from a generator seeded with
    ``seed``. Resamples where the statistic is undefined (NaN) are left out; NaN if all are.
    """
    return percentile_interval(bootstrap_values(statistic, n_units, n_resamples, seed), confidence)


def bootstrap_values(
    statistic: Callable[[np.ndarray], Any], n_units: int, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """``statistic(indices)`` for each of ``n_resamples`` draws of ``n_units`` unit indices with
    replacement (seeded); one row per resample (a vector statistic gives a 2-D array)."""
    rng = np.random.default_rng(seed)
    return np.array([statistic(rng.integers(0, n_units, n_units)) for _ in range(n_resamples)], dtype=float)


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` interval of the finite ``values``; NaN if there are none."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """``sum(w * v) / sum(w)``; NaN when every weight is zero (nothing drawn)."""
    total = weights.sum()
    return float(np.dot(weights, values) / total) if total > 0 else math.nan


def image_codes(img1: Sequence[Any], img2: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes of each pair's two images over the images of all pairs, and how many."""
    import pandas as pd

    codes, images = pd.factorize(pd.concat([pd.Series(img1), pd.Series(img2)], ignore_index=True))
    return codes[: len(img1)], codes[len(img1) :], len(images)


def image_resample_weights(
    image1_codes: np.ndarray, image2_codes: np.ndarray, drawn_images: np.ndarray, n_images: int
) -> np.ndarray:
    """How often each pair appears when the images ``drawn_images`` are drawn.

    A pair of images drawn ``a`` and ``b`` times appears ``a * b`` times (every copy of one image
    paired with every copy of the other); a pair with an image not drawn drops out.
    """
    counts = np.bincount(drawn_images, minlength=n_images)
    return counts[image1_codes] * counts[image2_codes]


def image_overlap_products(
    values: np.ndarray, image1: np.ndarray, image2: np.ndarray, n_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(S @ values, M @ values)`` for pairs ``p, q``: ``S[p, q]`` counts the images they share
    and ``M[p, q]`` is 1 when they share one (both 1 on the diagonal for pairs of two images).

    ``values`` has one row per pair (a 1-D array is one column); results have the same shape.
    """
    matrix = np.asarray(values, dtype=float).reshape(len(image1), -1)
    distinct = image1 != image2
    per_image = np.zeros((n_images, matrix.shape[1]))
    np.add.at(per_image, image1, matrix)
    np.add.at(per_image, image2[distinct], matrix[distinct])
    counted = per_image[image1] + np.where(distinct[:, None], per_image[image2], 0.0)
    # pairs of the same two images share two images: M counts them once
    keys = np.minimum(image1, image2).astype(np.int64) * n_images + np.maximum(image1, image2)
    _, same_images = np.unique(keys, return_inverse=True)
    per_key = np.zeros((same_images.max(initial=-1) + 1, matrix.shape[1]))
    np.add.at(per_key, same_images, matrix)
    shared = counted - np.where(distinct[:, None], per_key[same_images], 0.0)
    return counted.reshape(np.shape(values)), shared.reshape(np.shape(values))


MeanTerm = tuple[np.ndarray, np.ndarray, float]


def pair_graph_interval(
    estimate: float,
    terms: Sequence[MeanTerm],
    image1: np.ndarray,
    image2: np.ndarray,
    n_images: int,
    confidence: float = 0.95,
    pair_noise: float = 1.0,
) -> tuple[float, float]:
    """Interval of a smooth function of means over pairs that share images (dyadic data).

    ``terms`` linearise the statistic: one ``(values, in_mean, derivative)`` per mean it uses,
    ``values`` the per-pair values that mean is taken over (where ``in_mean``) and
    ``derivative`` the statistic's derivative with respect to that mean. The variance is the
    dyadic-robust one (Fafchamps & Gubert 2007; Aronow, Samii & Assenova 2015): the sum of the
    products of the influences of every two pairs that share an image. An image bootstrap (a pair
    of images drawn ``a`` and ``b`` times entering ``a * b`` times) counts each pair's own noise
    three times instead (Owen 2007), too wide where images are in few pairs.

    The variance is scaled by its expected shrinkage from centring each mean (as ``G / (G - 1)``
    does for clusters) under the two-way random-effects model: a pair's value = an effect of each
    of its images + its own noise, ``pair_noise`` the ratio of their variances (0.1 to 10 moved
    the simulated coverage by 0.01). The interval is ``estimate +- t * sd``, ``t`` on
    Satterthwaite's degrees of freedom of that variance (up to ``DENSE_PAIRS`` pairs; images - 1
    beyond). Should the variance not be positive (it is not a sum of squares), the pairs' own
    variance is used, as if they were independent. NaN when fewer than two images are used or
    nothing is left to estimate the variance from (e.g. every pair shares an image).
    """
    influence = np.zeros(len(image1))
    weights, centring, members = np.zeros(len(image1)), [], []
    for values, in_mean, derivative in terms:
        in_mean = np.asarray(in_mean, dtype=bool)
        count = in_mean.sum()
        if count == 0 or not math.isfinite(derivative):
            return math.nan, math.nan
        values = np.asarray(values, dtype=float)
        influence[in_mean] += derivative * (values[in_mean] - values[in_mean].mean()) / count
        coefficient = np.where(in_mean, derivative / count, 0.0)
        weights += coefficient
        centring.append(coefficient / count)
        members.append(in_mean.astype(float))
    used = np.any(np.stack(members), axis=0)
    n_used = np.unique(np.concatenate([image1[used], image2[used]])).size
    variance = float(influence @ image_overlap_products(influence, image1, image2, n_images)[1])
    if not variance > 0:  # not a sum of squares, so it can be: take the pairs as independent
        variance = float(influence @ influence)
    # the influences are A @ values with A = diag(weights) - U E'; under Cov = S + pair_noise * I
    # the truth is w' Cov w and E[variance] = trace(M A Cov A')
    u, e = np.stack(centring, axis=1), np.stack(members, axis=1)
    s_w, _ = image_overlap_products(weights, image1, image2, n_images)
    s_e, _ = image_overlap_products(e, image1, image2, n_images)
    _, m_u = image_overlap_products(u, image1, image2, n_images)
    u_m_u = u.T @ m_u
    truth = float(weights @ s_w) + pair_noise * float(weights @ weights)
    expected = (
        float(weights @ s_w)
        - 2.0 * float(np.sum(m_u * weights[:, None] * s_e))
        + float(np.sum(u_m_u * (e.T @ s_e)))
        + pair_noise
        * (
            float(weights @ weights)
            - 2.0 * float(np.sum(m_u * weights[:, None] * e))
            + float(np.sum(u_m_u * (e.T @ e)))
        )
    )
    if n_used < 2 or not variance > 0 or not expected > 0:
        return math.nan, math.nan
    freedom = (
        satterthwaite_freedom(weights, u, e, image1, image2, pair_noise)
        if len(image1) <= DENSE_PAIRS
        else n_used - 1
    )
    half = float(t_distribution.ppf(0.5 + confidence / 2.0, freedom)) * math.sqrt(variance * truth / expected)
    return estimate - half, estimate + half


DENSE_PAIRS = 1000


def satterthwaite_freedom(
    weights: np.ndarray,
    u: np.ndarray,
    e: np.ndarray,
    image1: np.ndarray,
    image2: np.ndarray,
    pair_noise: float,
) -> float:
    """Degrees of freedom of the dyadic-robust variance ``v' M v`` (``v = A @ values``) under
    the random-effects model ``Cov = S + pair_noise * I``: ``2 E[V]^2 / Var(V)`` (Satterthwaite
    1946), with ``Var(V) = 2 trace((M A Cov A')^2)`` for Gaussian values. Dense: ``O(pairs^3)``."""
    incidence = np.zeros((len(image1), max(image1.max(), image2.max()) + 1))
    incidence[np.arange(len(image1)), image1] = 1.0
    incidence[np.arange(len(image2)), image2] = 1.0
    overlap = incidence @ incidence.T
    transform = np.diag(weights) - u @ e.T
    spread = (
        (np.asarray(overlap > 0, dtype=float) @ transform)
        @ (overlap + pair_noise * np.eye(len(image1)))
        @ transform.T
    )
    return float(2.0 * np.trace(spread) ** 2 / (2.0 * np.sum(spread * spread.T)))


def as_correlation(value: Any) -> float:
    """A correlation from what a correlation function returns.

    A scalar; a result with ``.statistic`` (scipy); a tuple ``(r, p)``; or a 2 x 2 matrix
    (``numpy.corrcoef``), whose off-diagonal entry is taken.
    """
    if hasattr(value, "statistic"):
        value = value.statistic
    elif isinstance(value, tuple | list) and np.ndim(value) < 2:
        value = value[0]
    array = np.asarray(value, dtype=float)
    if array.ndim == 2 and array.shape[0] >= 2 and array.shape[1] >= 2:
        return float(array[0, 1])
    if array.size == 1:
        return float(array.reshape(()))
    raise ValueError(
        f"a correlation function must return a number, a (statistic, p-value) tuple or a "
        f"2 x 2 matrix; got an array of shape {array.shape}"
    )
