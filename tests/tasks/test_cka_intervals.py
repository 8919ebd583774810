"""CKA's RBF variant against Kornblith et al.'s code, its half-sample intervals' coverage in a
simulation, its permutation test, and the heatmap's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.testing import array_view
from facebench_tasks.cka import CKAAnalysis, cka_matrix, half_sample_interval, permutation_p


def kornblith_gram_rbf(x: np.ndarray, threshold: float) -> np.ndarray:
    """``gram_rbf`` of Kornblith et al.'s CKA notebook (google-research/similarity), verbatim."""
    dot_products = x.dot(x.T)
    sq_norms = np.diag(dot_products)
    sq_distances = -2 * dot_products + sq_norms[:, None] + sq_norms[None, :]
    sq_median_distance = np.median(sq_distances)
    return np.exp(-sq_distances / (2 * threshold**2 * sq_median_distance))


def kornblith_cka(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    """Their ``cka`` (biased): centred kernels, ``<K, L> / (||K|| ||L||)``."""
    h = np.eye(len(gram_x)) - 1.0 / len(gram_x)
    gram_x, gram_y = h @ gram_x @ h, h @ gram_y @ h
    return gram_x.ravel().dot(gram_y.ravel()) / (np.linalg.norm(gram_x) * np.linalg.norm(gram_y))


def related(rng: np.random.Generator, n: int, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 6))
    y = x[:, :3] @ rng.normal(size=(3, 5)) + noise * rng.normal(size=(n, 5))
    return x, y


def centred_grams(*features: np.ndarray) -> np.ndarray:
    return np.stack([(f - f.mean(0)) @ (f - f.mean(0)).T for f in features])


def test_rbf_cka_equals_kornblith_et_al() -> None:
    rng = np.random.default_rng(0)
    x, y = related(rng, 40)
    views = {("m", "x"): array_view(x), ("m", "y"): array_view(y)}
    for fraction in (0.2, 0.5, 1.0):
        result = CKAAnalysis(methods=["rbf"], rbf_fraction=fraction).run(views)
        assert set(result["Method"]) == {f"rbf {fraction:g}"}
        x64, y64 = (v.read(np.arange(40)).astype(np.float64) for v in views.values())
        expected = kornblith_cka(kornblith_gram_rbf(x64, fraction), kornblith_gram_rbf(y64, fraction))
        assert result["CKA"].iloc[1] == pytest.approx(expected, abs=1e-9)
        assert result["CKA"].iloc[0] == pytest.approx(1.0, abs=1e-12)


def test_half_sample_intervals_reach_nominal_coverage_in_a_simulation() -> None:
    """120 samples of 40 images from one population; the population's CKA (linear CKA on
    400,000 images, where its bias is below 1e-5) lies inside >= 92 % of the 95 % intervals
    (run longer, 400 samples x 200 half-samples: 97.3 %; the intervals are conservative)."""
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(3, 5))

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 6))
        return x, x[:, :3] @ weights + 2.0 * rng.normal(size=(n, 5))

    big_x, big_y = draw(400_000)
    big_x, big_y = big_x - big_x.mean(0), big_y - big_y.mean(0)
    truth = np.linalg.norm(big_y.T @ big_x) ** 2 / (
        np.linalg.norm(big_x.T @ big_x) * np.linalg.norm(big_y.T @ big_y)
    )
    covered, widths = 0, []
    for _ in range(120):
        grams = centred_grams(*draw(40))
        low, high = half_sample_interval(grams, 100, 0.95, rng)
        covered += low[0, 1] <= truth <= high[0, 1]
        widths.append(high[0, 1] - low[0, 1])
    assert covered / 120 >= 0.92, covered
    assert np.median(widths) < 0.6  # an interval, not the whole range


def test_permutation_p_values_are_uniform_without_shared_structure() -> None:
    rng = np.random.default_rng(2)
    rejections = 0
    for _ in range(100):
        grams = centred_grams(rng.normal(size=(20, 4)), rng.normal(size=(20, 4)))
        observed = cka_matrix(grams, debiased=True)
        rejections += permutation_p(grams, True, observed, 99, rng)[0, 1] <= 0.05
    assert rejections <= 10  # 5 expected; P(>10 | binomial(100, .05)) < 1.2 %
    grams = centred_grams(*related(rng, 30, noise=0.3))
    assert permutation_p(grams, False, cka_matrix(grams), 99, rng)[0, 1] == pytest.approx(0.01)


def test_the_analysis_reports_intervals_and_p_values(tmp_path) -> None:
    rng = np.random.default_rng(3)
    x, y = related(rng, 24)
    views = {("m", "x"): array_view(x), ("m", "y"): array_view(y)}
    analysis = CKAAnalysis(methods=["linear", "debiased"], bootstrap=50, permutations=19, seed=4)
    result = analysis.run(views)
    assert list(result.columns)[-3:] == ["CI low", "CI high", "p (permutation)"]
    debiased = result[result["Method"] == "debiased linear"]
    assert (debiased["CI low"] <= debiased["CI high"]).all()
    assert result[result["Method"] == "linear"]["CI low"].isna().all()
    assert result["p (permutation)"].between(1 / 20, 1).all()
    again = CKAAnalysis(methods=["linear", "debiased"], bootstrap=50, permutations=19, seed=4).run(views)
    assert again.equals(result)  # seeded
    written = analysis.plot(tmp_path, result)
    assert any(path.suffix == ".png" for path in written)


def test_heatmap_cells_show_their_values(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    texts: list[str] = []
    original = matplotlib.axes.Axes.text

    def record(self, x, y, s, *args, **kwargs):
        texts.append(s)
        return original(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", record)
    rng = np.random.default_rng(5)
    x, y = related(rng, 16)
    analysis = CKAAnalysis(methods=["linear"])
    result = analysis.run({("m", "x"): array_view(x), ("m", "y"): array_view(y)})
    analysis.plot(tmp_path, result)
    assert sorted(texts) == sorted(f"{value:.2f}" for value in result["CKA"])
