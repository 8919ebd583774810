"""LayerView: chunked reads, Gram matrices and pairwise distances, with bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from facebench.testing import array_view

SCIPY_NAMES = {
    "cosine": "cosine",
    "euclidean": "euclidean",
    "squared-euclidean": "sqeuclidean",
    "correlation": "correlation",
    "manhattan": "cityblock",
}


def vectors(n: int = 13, d: int = 37, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_chunks_cover_the_rows_in_order_within_the_budget() -> None:
    x = vectors()
    view = array_view(x, [f"{i}.png" for i in range(len(x))], chunk_bytes=5 * 37 * 4, rows_per_file=4)
    chunks = list(view.iter_chunks())
    assert [len(rows) for rows, _ in chunks] == [5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([block for _, block in chunks]), x)
    rows = [12, 0, 7]
    np.testing.assert_array_equal(
        np.concatenate([b for _, b in view.iter_chunks(rows, chunk_rows=2)]), x[rows]
    )
    np.testing.assert_array_equal(np.concatenate(list(view.iter_column_chunks(rows)), axis=1), x[rows])
    np.testing.assert_array_equal(view.rows_of(["7.png", "0.png"]), [7, 0])
    assert view.dim == 37 and len(view) == 13


def test_gram_equals_the_direct_product() -> None:
    x = vectors().astype(np.float64)
    view = array_view(x, chunk_bytes=13 * 12 * 5)
    np.testing.assert_allclose(view.gram(), x @ x.T, rtol=1e-12, atol=1e-10)
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(view.gram(center=True), centred @ centred.T, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(view.gram([3, 1]), x[[3, 1]] @ x[[3, 1]].T, rtol=1e-12)


@pytest.mark.parametrize("metric", sorted(SCIPY_NAMES))
@pytest.mark.parametrize("chunk_bytes", [64, 2**20])
def test_pairwise_distances_equal_scipy_pdist(metric: str, chunk_bytes: int) -> None:
    x = vectors()
    view = array_view(x, [f"{i}.png" for i in range(len(x))], chunk_bytes=chunk_bytes)
    expected = pdist(x.astype(np.float64), SCIPY_NAMES[metric])
    np.testing.assert_allclose(view.pairwise_distances(metric), expected, rtol=1e-10, atol=1e-12)
    rows = [4, 9, 2, 11]
    np.testing.assert_allclose(
        view.pairwise_distances(metric, rows),
        pdist(x[rows].astype(np.float64), SCIPY_NAMES[metric]),
        rtol=1e-10,
    )
    listed = view.pair_distances(["4.png", "2.png"], ["9.png", "11.png"], metric)
    np.testing.assert_allclose(listed, expected[[_condensed(13, 4, 9), _condensed(13, 2, 11)]], rtol=1e-10)


def _condensed(n: int, i: int, j: int) -> int:
    return n * i - i * (i + 1) // 2 + (j - i - 1)


def test_a_wide_layer_is_never_held_whole() -> None:
    n, d = 12, 60_000  # 2.9 MB as float32, 5.8 MB as float64: 11 times the budget
    x = np.random.default_rng(1).normal(size=(n, d)).astype(np.float32)
    budget = 256 * 2**10
    view = array_view(x, chunk_bytes=budget, rows_per_file=4)
    read_sizes: list[int] = []
    read = view._table.read

    def recording_read(keys, columns=None):
        block = read(keys, columns)
        read_sizes.append(block.nbytes)
        return block

    view._table.read = recording_read
    tracemalloc.start()
    try:
        gram = view.gram(center=True)
        _, gram_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        distances = view.pairwise_distances("euclidean")
    finally:
        tracemalloc.stop()
    assert gram_peak < 4 * budget + gram.nbytes
    assert max(read_sizes) <= budget
    assert len(read_sizes) > 10  # many small reads, not one big one
    np.testing.assert_allclose(distances, pdist(x.astype(np.float64)), rtol=1e-10)
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(gram, centred @ centred.T, rtol=1e-10)
