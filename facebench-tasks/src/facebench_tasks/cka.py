"""Centered kernel alignment (CKA) between every extracted layer of every model.

Methods
-------
* ``linear``: linear CKA (Kornblith et al. 2019) of two representations ``X`` (n x p) and ``Y``
  (n x q) of the same n images, ``<K_c, L_c>_F / (||K_c||_F ||L_c||_F)`` with ``K_c = H X X' H``
  (the Gram matrix of the centred features).
* ``debiased``: each HSIC replaced by its unbiased estimator (Song et al. 2012; Nguyen, Raghu &
  Kornblith 2021), which removes the upward bias of linear CKA on few images: ``HSIC_u(K, L) =
  [tr(K~L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3))`` with ``K~`` the
  Gram matrix with its diagonal set to zero. It needs at least 4 images; it can be slightly
  negative. It does not change when the features are translated.
* ``rbf``: CKA of RBF kernels ``exp(-||x_i - x_j||^2 / (2 sigma^2))`` with ``sigma =
  rbf_fraction x`` the median distance between the images (Kornblith et al. 2019's
  ``gram_rbf``: the median of all n^2 squared distances, zeros of the diagonal included), kernels
  centred as in linear CKA.

Memory
------
Nothing here holds a layer's ``n x D`` features. The full-Gram path accumulates each layer's
centred Gram matrix over column blocks of the store (:meth:`facebench.layer_view.LayerView.gram`),
O(L n^2) for L model-layers, then compares them all with one matrix product. When those Gram
matrices would take more than ``gram_budget_mb`` (default 4096; or with ``minibatch`` set), the
analysis turns to **minibatch CKA** (Nguyen, Raghu & Kornblith 2021): the images are shuffled (``seed``) and
split into batches of at most ``minibatch`` images (by default as large as the budget allows, up
to 512), each batch's Gram matrices are read from the
store, and the unbiased HSIC of every pair of model-layers is averaged over the batches; CKA is
``mean HSIC_u(K, L) / sqrt(mean HSIC_u(K, K) mean HSIC_u(L, L))``. Memory is O(L b^2) for
batches of b images. Only the debiased method has a minibatch form (the biased ones depend on
the batch size). On 1,000 images, batches of 256 agree with the full computation to within 0.02
(``benchmarks/cka.py`` prints the difference; ``tests/tasks/test_cka_minibatch.py`` checks it).

Intervals and tests (full-Gram path)
------------------------------------
* ``bootstrap=B``: a 95 % (``confidence``) percentile interval of debiased CKA from B resamples
  of the images, drawn jointly for both representations. Each resample is **half of the images
  drawn without replacement** (half-sampling): a resample with replacement puts a duplicated
  image's self-similarity on off-diagonal Gram entries, which the debiased HSIC takes for a pair
  of distinct images, biasing CKA upwards. Half-samples contain no duplicate; the average of the
  unbiased HSIC over half-samples is the full sample's, and a statistic's spread over
  half-samples drawn without replacement matches its sampling spread at n (for a mean,
  ``var (1/m - 1/n) = var / n`` at ``m = n / 2``). The simulation in
  ``tests/tasks/test_cka_intervals.py`` shows the 95 % interval covers the population CKA at
  least nominally (97.3 % of 400 simulated samples of 40 images, 98.3 % of 300 of 60 images:
  conservative, since the estimator's second-order variance is larger at n / 2). Linear and RBF
  rows get no interval.
* ``permutations=P``: a one-sided permutation p-value against CKA = 0 (no shared structure):
  the images of the second representation are permuted P times (``seed``) and
  ``p = (1 + #{CKA_perm >= CKA}) / (1 + P)``, for every method. Each permutation costs one CKA
  matrix, so keep P x L^2 x n^2 in mind.

Output: a tidy table with one row per ordered pair of model-layers and method: ``Model A``,
``Layer A``, ``Model B``, ``Layer B``, ``Method`` (``linear``, ``debiased linear`` or ``rbf
<fraction>``), ``CKA``; with ``bootstrap``, ``CI low`` and ``CI high``; with ``permutations``,
``p (permutation)``. One heatmap per method over all model-layers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from facebench.analysis import BaseAnalysis
from facebench.errors import ConfigError, DataError

if TYPE_CHECKING:
    from facebench.layer_view import LayerView

log = logging.getLogger(__name__)

METHODS = {"linear": "linear", "debiased": "debiased linear", "rbf": "rbf"}
COLUMNS = ("Model A", "Layer A", "Model B", "Layer B", "Method", "CKA")
INTERVAL_COLUMNS = ("CI low", "CI high")
P_COLUMN = "p (permutation)"


def hsic_cross(a: np.ndarray, b: np.ndarray, debiased: bool) -> np.ndarray:
    """``S[i, j]`` = (scaled) HSIC between the centred Gram matrices ``a[i]`` and ``b[j]``
    (``(La, n, n)``, ``(Lb, n, n)``): ``<K_i, L_j>_F``, or ``n (n - 3) HSIC_u`` (debiased;
    Song et al.'s estimator)."""
    n = a.shape[1]
    products = a.reshape(len(a), n * n) @ b.reshape(len(b), n * n).T  # views: no copy
    if not debiased:
        return products
    diagonal_a, diagonal_b = np.diagonal(a, axis1=1, axis2=2), np.diagonal(b, axis1=1, axis2=2)
    rows_a, rows_b = a.sum(axis=2) - diagonal_a, b.sum(axis=2) - diagonal_b  # K~ 1
    trace = products - diagonal_a @ diagonal_b.T  # tr(K~_i L~_j)
    return (
        trace
        + np.outer(rows_a.sum(axis=1), rows_b.sum(axis=1)) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (rows_a @ rows_b.T)
    )


def cka_matrix(grams: np.ndarray, debiased: bool = False) -> np.ndarray:
    """CKA between every pair of the centred Gram matrices ``grams`` (``(L, n, n)``, ``H K H``)."""
    if debiased and grams.shape[1] < 4:
        raise DataError(f"debiased CKA needs at least 4 images, got {grams.shape[1]}")
    return _normalise(hsic_cross(grams, grams, debiased))


def _normalise(
    hsic: np.ndarray, self_a: np.ndarray | None = None, self_b: np.ndarray | None = None
) -> np.ndarray:
    self_a = np.diag(hsic) if self_a is None else self_a
    self_b = self_a if self_b is None else self_b
    with np.errstate(invalid="ignore", divide="ignore"):
        return hsic / np.sqrt(np.outer(np.clip(self_a, 0.0, None), np.clip(self_b, 0.0, None)))


def rbf_grams(grams: np.ndarray, fraction: float) -> np.ndarray:
    """Centred RBF kernels from centred linear Gram matrices (``(L, n, n)``), ``sigma`` =
    ``fraction`` x the median distance (Kornblith et al.'s ``gram_rbf``, module docstring)."""
    out = np.empty_like(grams)
    for index, gram in enumerate(grams):
        norms = np.diag(gram)
        squared = np.clip(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0, None)
        median = np.median(squared)
        with np.errstate(invalid="ignore", divide="ignore"):
            kernel = np.exp(-squared / (2.0 * fraction**2 * median))
        out[index] = center(kernel)
    return out


def center(kernel: np.ndarray) -> np.ndarray:
    """``H K H``: rows and columns of ``kernel`` centred."""
    kernel = kernel - kernel.mean(axis=0, keepdims=True)
    return kernel - kernel.mean(axis=1, keepdims=True)


def half_sample_interval(
    grams: np.ndarray, resamples: int, confidence: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of debiased CKA over ``resamples`` half-samples of the images drawn
    without replacement (module docstring): ``(low, high)``, each ``(L, L)``."""
    n = grams.shape[1]
    half = n // 2
    if half < 4:
        raise DataError(f"a CKA interval needs at least 8 images (half-samples of 4), got {n}")
    values = np.empty((resamples, len(grams), len(grams)))
    for draw in range(resamples):
        rows = np.sort(rng.choice(n, size=half, replace=False))
        values[draw] = cka_matrix(grams[:, rows][:, :, rows], debiased=True)
    tail = (1.0 - confidence) / 2.0
    return np.nanquantile(values, tail, axis=0), np.nanquantile(values, 1.0 - tail, axis=0)


def permutation_p(
    kernels: np.ndarray, debiased: bool, observed: np.ndarray, permutations: int, rng: np.random.Generator
) -> np.ndarray:
    """One-sided p-values of ``observed`` (``(L, L)`` CKA of ``kernels``) against no shared
    structure: the second representation's images permuted ``permutations`` times."""
    self_hsic = np.diag(hsic_cross(kernels, kernels, debiased))
    exceed = np.zeros(observed.shape)
    for _ in range(permutations):
        order = rng.permutation(kernels.shape[1])
        permuted = _normalise(hsic_cross(kernels, kernels[:, order][:, :, order], debiased), self_hsic)
        exceed += permuted >= observed - 1e-12
    return (1.0 + exceed) / (1.0 + permutations)


def minibatch_cka(views: Sequence[LayerView], batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Debiased CKA between ``views`` averaged over minibatches (Nguyen et al. 2021): the images
    shuffled and split into batches of at most ``batch_size``, unbiased HSIC averaged over the
    batches. Memory O(L batch_size^2)."""
    n = len(views[0])
    order = rng.permutation(n)
    batches = -(-n // batch_size)  # batches of at most batch_size images
    if n // batches < 4:
        raise DataError(f"minibatch CKA needs batches of at least 4 images; {n} images in {batches}")
    total = np.zeros((len(views), len(views)))
    largest = -(-n // batches)
    grams = np.empty((len(views), largest, largest))
    for batch in np.array_split(order, batches):
        batch = np.sort(batch)  # reads follow the store's order
        size = batch.size
        block = grams[:, :size, :size]
        for index, view in enumerate(views):
            block[index] = view.gram(batch, center=True)
        total += hsic_cross(block, block, debiased=True) / (size * (size - 3))
    return _normalise(total / batches)


DEFAULT_METHODS = ("linear", "debiased")


class CKAAnalysis(BaseAnalysis):
    """CKA across all model-layers of a run, with optional intervals (module docstring).

    - ``methods``: among linear, debiased, rbf (default: linear and debiased, or debiased alone
      when the analysis turns to minibatches; asking for another method then is an error).
    - ``rbf_fraction``: sigma of the RBF kernel over the median distance between the images.
    - ``bootstrap``: half-samples for the interval of debiased CKA (0: no interval).
    - ``permutations``: permutations for the p-value against CKA = 0 (0: no test).
    - ``confidence``: the interval's level.
    - ``seed``: seeds the half-samples, permutations and minibatches.
    - ``minibatch``: images per batch of minibatch CKA (0: the full Gram matrices, unless they
      exceed gram_budget_mb).
    - ``gram_budget_mb``: the most the full Gram matrices may take; beyond it, minibatches as
      large as it allows (up to 512 images).
    """

    default_name = "cka"

    def __init__(
        self,
        name: str | None = None,
        *,
        methods: Sequence[str] | None = None,
        rbf_fraction: float = 0.5,
        bootstrap: int = 0,
        permutations: int = 0,
        confidence: float = 0.95,
        seed: int = 0,
        minibatch: int = 0,
        gram_budget_mb: float = 4096.0,
        **common: Any,
    ) -> None:
        self.methods_chosen = methods is not None
        methods = DEFAULT_METHODS if methods is None else methods
        methods = [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ConfigError(f"cka methods must be among {', '.join(map(repr, METHODS))}; got {methods!r}")
        if not 0.0 < confidence < 1.0:
            raise ConfigError(f"cka confidence must lie between 0 and 1, not {confidence!r}")
        if rbf_fraction <= 0:
            raise ConfigError(f"cka rbf_fraction must be positive, not {rbf_fraction!r}")
        for option, number in (
            ("bootstrap", bootstrap),
            ("permutations", permutations),
            ("minibatch", minibatch),
        ):
            if int(number) < 0:
                raise ConfigError(f"cka {option} must be 0 or more, not {number!r}")
        if minibatch and minibatch < 4:
            raise ConfigError(f"cka minibatch must be at least 4 images, not {minibatch!r}")
        self.methods = methods
        self.rbf_fraction = float(rbf_fraction)
        self.bootstrap = int(bootstrap)
        self.permutations = int(permutations)
        self.confidence = float(confidence)
        self.seed = int(seed)
        self.minibatch = int(minibatch)
        self.gram_budget_mb = float(gram_budget_mb)
        super().__init__(name, **common)

    def label(self, method: str) -> str:
        """The ``Method`` column's value for ``method``."""
        return f"rbf {self.rbf_fraction:g}" if method == "rbf" else METHODS[method]

    def batch_size(self, layers: int, n: int) -> int:
        """The minibatch size to use, 0 for the full Gram matrices."""
        if self.minibatch:
            return self.minibatch
        budget = self.gram_budget_mb * 2**20
        if layers * n * n * 8 <= budget:
            return 0
        size = max(4, min(512, int(np.sqrt(budget / (8 * layers)))))
        log.info("cka: %d x %d^2 Gram matrices exceed gram_budget_mb; minibatches of %d", layers, n, size)
        return size

    def run(self, views: Mapping[tuple[str, str], LayerView]) -> pd.DataFrame:
        keys = list(views)
        n = len(next(iter(views.values())))
        if n < 2:
            raise DataError(f"analysis {self.name!r}: CKA needs at least 2 images, got {n}")
        rng = np.random.default_rng(self.seed)
        batch_size = self.batch_size(len(keys), n)
        if batch_size:
            return self._run_minibatch(keys, views, batch_size, rng)
        grams = np.empty((len(keys), n, n))  # filled in place: the only copy of the Gram matrices
        for index, key in enumerate(keys):
            grams[index] = views[key].gram(center=True)
        frames = []
        for method in self.methods:
            kernels = rbf_grams(grams, self.rbf_fraction) if method == "rbf" else grams
            debiased = method == "debiased"
            matrix = cka_matrix(kernels, debiased=debiased)
            columns: dict[str, np.ndarray] = {"CKA": matrix}
            if self.bootstrap:
                low, high = (
                    half_sample_interval(grams, self.bootstrap, self.confidence, rng)
                    if debiased
                    else (np.full_like(matrix, np.nan), np.full_like(matrix, np.nan))
                )
                columns.update(dict(zip(INTERVAL_COLUMNS, (low, high), strict=True)))
            if self.permutations:
                columns[P_COLUMN] = permutation_p(kernels, debiased, matrix, self.permutations, rng)
            frames.append(self._table(keys, self.label(method), columns))
        return pd.concat(frames, ignore_index=True)

    def _run_minibatch(
        self,
        keys: list[tuple[str, str]],
        views: Mapping[tuple[str, str], LayerView],
        batch_size: int,
        rng: np.random.Generator,
    ) -> pd.DataFrame:
        others = [m for m in self.methods if m != "debiased"] if self.methods_chosen else []
        if others or self.bootstrap or self.permutations:
            asked = ", ".join([*others, *(["bootstrap"] if self.bootstrap else []), *(
                ["permutations"] if self.permutations else [])])  # fmt: skip
            raise DataError(
                f"analysis {self.name!r}: minibatch CKA (batches of {batch_size} images, used when "
                f"{len(keys)} model-layers x {len(next(iter(views.values())))}^2 Gram matrices exceed "
                f"gram_budget_mb={self.gram_budget_mb:g}, or with minibatch=) computes debiased CKA "
                f"only; {asked} need(s) the full Gram matrices: use methods=[debiased] without "
                f"them, fewer images or layers, or a larger gram_budget_mb"
            )
        if not self.methods_chosen:
            log.info("cka: minibatch CKA computes debiased CKA only; linear CKA is not reported")
        matrix = minibatch_cka([views[key] for key in keys], batch_size, rng)
        return self._table(keys, self.label("debiased"), {"CKA": matrix})

    @staticmethod
    def _table(keys: list[tuple[str, str]], method: str, columns: Mapping[str, np.ndarray]) -> pd.DataFrame:
        a, b = np.meshgrid(np.arange(len(keys)), np.arange(len(keys)), indexing="ij")
        return pd.DataFrame(
            {
                "Model A": [keys[i][0] for i in a.ravel()],
                "Layer A": [keys[i][1] for i in a.ravel()],
                "Model B": [keys[j][0] for j in b.ravel()],
                "Layer B": [keys[j][1] for j in b.ravel()],
                "Method": method,
                **{column: values.ravel() for column, values in columns.items()},
            }
        )

    def plot(self, output_dir: Path, result: pd.DataFrame) -> list[Path]:
        """One heatmap per method: every model-layer against every other, models in blocks."""
        from facebench_tasks.cka_plots import cka_heatmap

        written: list[Path] = []
        for method, rows in result.groupby("Method", sort=False):
            written += cka_heatmap(rows, str(method), Path(output_dir), self.name)
        return written
