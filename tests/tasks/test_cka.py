"""The cka analysis against direct formulas on random features, and its invariances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebench.errors import ConfigError, DataError
from facebench.testing import array_view
from facebench_tasks.cka import CKAAnalysis


def direct_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s feature-space formula: ||Y'X||^2 / (||X'X|| ||Y'Y||), centred features."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def unbiased_hsic(k: np.ndarray, m: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, written out on the raw Gram matrices (no centring)."""
    n = k.shape[0]
    k, m = k.copy(), m.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(m, 0.0)
    ones = np.ones(n)
    return (
        np.trace(k @ m)
        + (ones @ k @ ones) * (ones @ m @ ones) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * ones @ k @ m @ ones
    ) / (n * (n - 3))


def direct_debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    k, m = x @ x.T, y @ y.T
    return unbiased_hsic(k, m) / np.sqrt(unbiased_hsic(k, k) * unbiased_hsic(m, m))


def features(seed: int = 0, n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Two related float32 representations of the same n images, with a large mean (ReLU-like)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 40)) + 3.0
    y = np.maximum(x[:, :25] @ rng.normal(size=(25, 15)), 0.0) + rng.normal(scale=0.5, size=(n, 15))
    return x.astype(np.float32), y.astype(np.float32)


def run(views: dict[tuple[str, str], object], **options: object) -> pd.DataFrame:
    return CKAAnalysis(**options).run(views)


def value(result: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], method: str) -> float:
    row = result[
        (result["Model A"] == a[0])
        & (result["Layer A"] == a[1])
        & (result["Model B"] == b[0])
        & (result["Layer B"] == b[1])
        & (result["Method"] == method)
    ]
    assert len(row) == 1
    return float(row["CKA"].iloc[0])


def test_cka_equals_the_direct_formulas_and_one_with_itself() -> None:
    x, y = features()
    views = {("m1", "x"): array_view(x), ("m2", "y"): array_view(y)}
    result = run(views)
    assert list(result.columns) == ["Model A", "Layer A", "Model B", "Layer B", "Method", "CKA"]
    assert len(result) == 2 * 2 * 2  # ordered pairs x methods
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    assert value(result, ("m1", "x"), ("m2", "y"), "linear") == pytest.approx(
        direct_linear_cka(x64, y64), abs=1e-10
    )
    assert value(result, ("m1", "x"), ("m2", "y"), "debiased linear") == pytest.approx(
        direct_debiased_cka(x64, y64), abs=1e-10
    )
    assert value(result, ("m2", "y"), ("m1", "x"), "linear") == value(
        result, ("m1", "x"), ("m2", "y"), "linear"
    )
    for method in ("linear", "debiased linear"):
        assert value(result, ("m1", "x"), ("m1", "x"), method) == pytest.approx(1.0, abs=1e-12)
    # on few images, linear CKA of unrelated features is biased upwards; the debiased one is not
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(12, 300)), rng.normal(size=(12, 300))
    noise = run({("a", "l"): array_view(a), ("b", "l"): array_view(b)})
    assert value(noise, ("a", "l"), ("b", "l"), "linear") > 0.5
    assert abs(value(noise, ("a", "l"), ("b", "l"), "debiased linear")) < 0.1


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling() -> None:
    x, y = features(seed=2)
    rng = np.random.default_rng(3)
    rotation, _ = np.linalg.qr(rng.normal(size=(x.shape[1], x.shape[1])))
    transformed = (4.5 * x.astype(np.float64) @ rotation).astype(np.float32)
    result = run({("m", "x"): array_view(x), ("m", "t"): array_view(transformed), ("m", "y"): array_view(y)})
    for method in ("linear", "debiased linear"):
        assert value(result, ("m", "x"), ("m", "t"), method) == pytest.approx(1.0, abs=1e-6)
        assert value(result, ("m", "t"), ("m", "y"), method) == pytest.approx(
            value(result, ("m", "x"), ("m", "y"), method), abs=1e-6
        )


def test_one_chunk_equals_many_chunks() -> None:
    x, y = features(seed=4, n=40)
    whole = run({("m", "x"): array_view(x), ("m", "y"): array_view(y)})
    tiny = 40 * 12 * 3  # three dimensions per column block
    chunked_views = {
        ("m", "x"): array_view(x, chunk_bytes=tiny, rows_per_file=7),
        ("m", "y"): array_view(y, chunk_bytes=tiny, rows_per_file=7),
    }
    assert len(list(chunked_views["m", "x"].iter_column_chunks())) == 14
    chunked = run(chunked_views)
    np.testing.assert_allclose(chunked["CKA"].to_numpy(), whole["CKA"].to_numpy(), rtol=0, atol=1e-12)


def test_bad_options_and_too_few_images() -> None:
    with pytest.raises(ConfigError, match="methods"):
        CKAAnalysis(methods=["cosine"])
    x, y = features(n=3)
    with pytest.raises(DataError, match="at least 4 images"):
        run({("m", "x"): array_view(x), ("m", "y"): array_view(y)})
    assert len(run({("m", "x"): array_view(x), ("m", "y"): array_view(y)}, methods=["linear"])) == 4
