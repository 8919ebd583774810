"""The built-in distances equal scipy's, pair by pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import distance

from facebench.errors import ConfigError, UnknownNameError
from facebench.metrics import resolve_metric

SCIPY_REFERENCE = {
    "cosine": distance.cosine,
    "euclidean": distance.euclidean,
    "squared-euclidean": distance.sqeuclidean,
    "correlation": distance.correlation,
    "manhattan": distance.cityblock,
}


@pytest.mark.parametrize("name", sorted(SCIPY_REFERENCE))
def test_builtin_metric_matches_scipy_per_pair(name: str) -> None:
    rng = np.random.default_rng(7)
    a = rng.normal(size=(50, 33))
    b = rng.normal(size=(50, 33)) + 0.3 * a
    got = resolve_metric(name)(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    expected = [SCIPY_REFERENCE[name](a[i], b[i]) for i in range(len(a))]
    assert got.shape == (50,)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_metrics_are_row_wise_not_all_pairs() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(resolve_metric("cosine")(a, b).numpy(), [0.0, 1.0], atol=1e-7)


@pytest.mark.parametrize("name", ["cosine", "correlation"])
def test_undefined_similarity_has_a_documented_distance(name: str) -> None:
    """Two black images (all-zero, or constant, embeddings) are identical; one against a
    varying embedding is as far as orthogonal ones. scipy gives NaN for all of these."""
    zero, constant, varying = torch.zeros(1, 6), torch.full((1, 6), 0.1), torch.arange(6.0).reshape(1, 6)
    metric = resolve_metric(name)
    assert metric(zero, zero).item() == 0.0
    assert metric(zero, varying).item() == pytest.approx(1.0)
    assert metric(varying, zero).item() == pytest.approx(1.0)
    if name == "correlation":
        assert metric(constant, torch.full((1, 6), 0.7)).item() == 0.0
        assert metric(constant, varying).item() == pytest.approx(1.0)
    rows = torch.cat([zero, varying]), torch.cat([zero, varying + 1])  # mixed rows in one batch
    assert torch.isfinite(metric(*rows)).all()


def test_bounded_flags() -> None:
    assert resolve_metric("cosine").bounded and resolve_metric("correlation").bounded
    assert not resolve_metric("euclidean").bounded


def test_unknown_metric_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'cosine'"):
        resolve_metric("cosin")


def test_user_callable_is_accepted_and_wrapped() -> None:
    metric = resolve_metric(lambda a, b: (a - b).abs().max(dim=1).values)
    a, b = torch.zeros(2, 3), torch.tensor([[1.0, 2.0, 3.0], [0.0, -5.0, 1.0]])
    np.testing.assert_allclose(metric(a, b).numpy(), [3.0, 5.0])


def test_user_callable_with_wrong_shape_is_refused() -> None:
    def all_pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cdist(a, b)

    with pytest.raises(ConfigError, match=r"returned shape \(3, 3\) for 3 pairs; expected \(3,\)"):
        resolve_metric(all_pairs)


def test_user_callable_that_raises_is_reported() -> None:
    def broken(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise ValueError("boom")

    with pytest.raises(ConfigError, match="'broken' failed on a \\(3, 4\\) test input: boom"):
        resolve_metric(broken)
