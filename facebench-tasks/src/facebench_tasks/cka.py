"""Centered kernel alignment (CKA) between every extracted layer of every model.

Linear CKA (Kornblith et al. 2019) of two representations ``X`` (n x p) and ``Y`` (n x q) of
the same n images is ``<K_c, L_c>_F / (||K_c||_F ||L_c||_F)`` with ``K_c = H X X' H`` (the
Gram matrix of the centred features). Debiased linear CKA replaces each HSIC by its unbiased
estimator (Song et al. 2012; Nguyen, Raghu & Kornblith 2021), which removes the upward bias
of linear CKA on few images: ``HSIC_u(K, L) = [tr(K~L~) + (1'K~1)(1'L~1) / ((n-1)(n-2))
- 2/(n-2) 1'K~L~1] / (n(n-3))`` with ``K~`` the Gram matrix with its diagonal set to zero. It
needs at least 4 images; it can be slightly negative.

Nothing here holds a layer's ``n x D`` features: each layer's centred Gram matrix is
accumulated over column blocks of the embedding store
(:meth:`facebench.layer_view.LayerView.gram`), so memory is O(n^2) per layer and
O(L n^2) for L model-layers (all Gram matrices are kept, then compared with one matrix
product), never O(n D). The unbiased HSIC is computed from the centred Gram matrices (it does
not change when the features are translated).

Output: a tidy table with one row per ordered pair of model-layers and method: ``Model A``,
``Layer A``, ``Model B``, ``Layer B``, ``Method`` (``linear`` or ``debiased linear``), ``CKA``;
and one heatmap per method over all model-layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from facebench.analysis import BaseAnalysis
from facebench.errors import ConfigError, DataError

if TYPE_CHECKING:
    from facebench.layer_view import LayerView

METHODS = {"linear": "linear", "debiased": "debiased linear"}
COLUMNS = ("Model A", "Layer A", "Model B", "Layer B", "Method", "CKA")


def linear_hsic_matrix(grams: np.ndarray, debiased: bool) -> np.ndarray:
    """``S[a, b]`` = (scaled) HSIC between the centred Gram matrices ``grams[a]`` and ``grams[b]``
    (``grams``: ``(L, n, n)``): ``<K_a, K_b>_F`` (linear), or ``n (n - 3) HSIC_u`` (debiased;
    Song et al.'s estimator)."""
    count, n = grams.shape[0], grams.shape[1]
    flat = grams.reshape(count, n * n)  # a view: no copy
    products = flat @ flat.T  # <K_a, K_b>_F
    if not debiased:
        return products
    diagonals = np.diagonal(grams, axis1=1, axis2=2)  # (L, n)
    row_sums = grams.sum(axis=2) - diagonals  # K~ 1
    totals = row_sums.sum(axis=1)  # 1' K~ 1
    trace = products - diagonals @ diagonals.T  # tr(K~_a K~_b)
    return trace + np.outer(totals, totals) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (row_sums @ row_sums.T)


def cka_matrix(grams: np.ndarray, debiased: bool = False) -> np.ndarray:
    """CKA between every pair of the centred Gram matrices ``grams`` (``(L, n, n)``, ``H K H``)."""
    if debiased and grams.shape[1] < 4:
        raise DataError(f"debiased CKA needs at least 4 images, got {grams.shape[1]}")
    hsic = linear_hsic_matrix(grams, debiased)
    scale = np.sqrt(np.clip(np.diag(hsic), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        return hsic / np.outer(scale, scale)


class CKAAnalysis(BaseAnalysis):
    """Linear and debiased linear CKA across all model-layers of a run (module docstring).

    ``methods``: ``["linear", "debiased"]`` (default both).
    """

    default_name = "cka"

    def __init__(
        self,
        name: str | None = None,
        *,
        methods: Sequence[str] = ("linear", "debiased"),
        **common: Any,
    ) -> None:
        methods = [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown or not methods:
            raise ConfigError(f"cka methods must be among {', '.join(map(repr, METHODS))}; got {methods!r}")
        self.methods = methods
        super().__init__(name, **common)

    def run(self, views: Mapping[tuple[str, str], LayerView]) -> pd.DataFrame:
        keys = list(views)
        n = len(next(iter(views.values())))
        if n < 2:
            raise DataError(f"analysis {self.name!r}: CKA needs at least 2 images, got {n}")
        grams = np.empty((len(keys), n, n))  # filled in place: the only copy of the Gram matrices
        for index, key in enumerate(keys):
            grams[index] = views[key].gram(center=True)
        frames = []
        for method in self.methods:
            matrix = cka_matrix(grams, debiased=method == "debiased")
            a, b = np.meshgrid(np.arange(len(keys)), np.arange(len(keys)), indexing="ij")
            frames.append(
                pd.DataFrame(
                    {
                        "Model A": [keys[i][0] for i in a.ravel()],
                        "Layer A": [keys[i][1] for i in a.ravel()],
                        "Model B": [keys[j][0] for j in b.ravel()],
                        "Layer B": [keys[j][1] for j in b.ravel()],
                        "Method": METHODS[method],
                        "CKA": matrix.ravel(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def plot(self, output_dir: Path, result: pd.DataFrame) -> list[Path]:
        """One heatmap per method: every model-layer against every other, models in blocks."""
        from facebench_tasks.cka_plots import cka_heatmap

        written: list[Path] = []
        for method, rows in result.groupby("Method", sort=False):
            written += cka_heatmap(rows, str(method), Path(output_dir), self.name)
        return written
