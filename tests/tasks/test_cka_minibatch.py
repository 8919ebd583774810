"""Minibatch CKA (Nguyen, Raghu & Kornblith 2021) against the full computation."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.errors import DataError
from facebench.testing import array_view
from facebench_tasks.cka import CKAAnalysis, cka_matrix, hsic_cross, minibatch_cka


def representations(n: int, seed: int = 0) -> list[np.ndarray]:
    """Three related ReLU-like representations of the same n images, and an unrelated one."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.normal(size=(n, 30)) + 0.5, 0.0)
    y = np.maximum(x @ rng.normal(size=(30, 20)), 0.0) + rng.normal(scale=2.0, size=(n, 20))
    z = np.tanh(y[:, :10] @ rng.normal(size=(10, 12))) + rng.normal(scale=0.5, size=(n, 12))
    return [x, y, z, rng.normal(size=(n, 8))]


def test_minibatch_equals_the_full_computation_within_its_tolerance() -> None:
    arrays = representations(1000)
    views = [array_view(a, rows_per_file=300) for a in arrays]
    grams = np.stack([v.gram(center=True) for v in views])
    full = cka_matrix(grams, debiased=True)
    batched = minibatch_cka(views, 256, np.random.default_rng(0))
    np.testing.assert_allclose(batched, batched.T, atol=1e-12)
    np.testing.assert_allclose(np.diag(batched), 1.0, atol=1e-12)
    assert np.abs(batched - full).max() <= 0.02  # the tolerance the docs state for 1,000 images
    assert abs(full[0, 1]) > 0.3 and abs(full[0, 3]) < 0.05  # the comparison means something


def test_one_batch_is_the_full_computation_and_batches_average_unbiased_hsic() -> None:
    arrays = representations(60, seed=1)
    views = [array_view(a) for a in arrays]
    grams = np.stack([v.gram(center=True) for v in views])
    np.testing.assert_allclose(
        minibatch_cka(views, 60, np.random.default_rng(0)), cka_matrix(grams, debiased=True), atol=1e-12
    )
    order = np.random.default_rng(7).permutation(60)
    batches = [np.sort(b) for b in np.array_split(order, 3)]
    mean = sum(hsic_cross(g := grams[:, b][:, :, b], g, True) / (len(b) * (len(b) - 3)) for b in batches) / 3
    expected = mean / np.sqrt(np.outer(np.diag(mean), np.diag(mean)))
    np.testing.assert_allclose(minibatch_cka(views, 20, np.random.default_rng(7)), expected, atol=1e-12)


def test_the_analysis_turns_to_minibatches_beyond_its_gram_budget() -> None:
    arrays = representations(200, seed=2)
    views = {("m", str(i)): array_view(a) for i, a in enumerate(arrays)}
    full = CKAAnalysis(methods=["debiased"]).run(views)
    batched = CKAAnalysis(methods=["debiased"], gram_budget_mb=0.5).run(views)  # 4 x 200^2 x 8 B > 0.5 MiB
    explicit = CKAAnalysis(methods=["debiased"], minibatch=512).run(views)
    assert list(batched.columns) == list(full.columns)
    assert not np.allclose(batched["CKA"], full["CKA"], atol=1e-9)  # it did take batches
    np.testing.assert_allclose(explicit["CKA"], full["CKA"], atol=1e-12)  # one batch of all 200
    # By default the analysis computes what minibatches allow; a method asked for by name that
    # needs the full Gram matrices is an error, never silently dropped.
    default = CKAAnalysis(gram_budget_mb=0.5).run(views)
    assert set(default["Method"]) == set(batched["Method"])
    np.testing.assert_allclose(default["CKA"], batched["CKA"], atol=0)
    with pytest.raises(DataError, match="debiased CKA only; linear"):
        CKAAnalysis(methods=["linear", "debiased"], gram_budget_mb=0.5).run(views)
