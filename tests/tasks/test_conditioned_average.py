"""Mean (normalised) distance per condition, conditions in file order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.errors import ConfigError, DataError
from facebench_tasks import stats
from facebench_tasks.conditioned_average import ConditionedAverageDistances


def loop_means(conditions, distances, normalize: bool) -> dict[str, float]:
    largest = max(abs(d) for d in distances)
    scale = largest if normalize and largest > 0 else 1.0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for condition, distance in zip(conditions, distances, strict=True):
        sums[condition] = sums.get(condition, 0.0) + distance / scale
        counts[condition] = counts.get(condition, 0) + 1
    return {c: sums[c] / counts[c] for c in sums}


@pytest.mark.parametrize("normalize", [True, False])
def test_view_invariant_file_means_in_file_order(fixtures: Path, images_for, normalize: bool) -> None:
    pairs_file = fixtures / "view_invariant_conditions.csv"
    task = ConditionedAverageDistances(
        pairs_file_path=pairs_file,
        images_path=images_for(pairs_file),
        condition_column="cond",
        normalize=normalize,
        n_bootstrap=50,
    )
    distances = np.random.default_rng(0).uniform(0.2, 1.6, len(task.pairs_df))
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=distances))
    expected = loop_means(task.pairs_df["cond"], distances, normalize)
    assert list(result.columns) == [
        "Condition",
        "Mean Value",
        "Mean Value CI Low",
        "Mean Value CI High",
        "Mean Value CI Unit",
        "Distance Metric",
    ]
    assert (result["Mean Value CI Unit"] == "images (dyadic-robust t interval)").all()
    assert result["Condition"].tolist() == [
        "Frontal - Frontal - Same",
        "Frontal - Quarter Left",
        "Frontal - Half Left",
        "Frontal - Frontal - Diff",
    ]
    np.testing.assert_allclose(result["Mean Value"], [expected[c] for c in result["Condition"]], rtol=1e-12)
    assert (result["Distance Metric"] == "cosine").all()


def loop_cluster_bootstrap(frame, distances, normalize: str, n_resamples: int, seed: int) -> dict[str, tuple]:
    """Per condition, the 2.5/97.5 percentiles over cluster resamples, written as plain loops."""
    clusters = list(pd.unique(frame["cluster"]))
    largest = max(abs(d) for d in distances)
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {c: [] for c in pd.unique(frame["condition"])}
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(clusters), len(clusters))
        rows = []  # (condition, distance), each pair once per draw of its cluster
        for k in drawn:
            pairs = zip(frame["condition"], distances, frame["cluster"], strict=True)
            rows += [(c, d) for c, d, g in pairs if g == clusters[k]]
        kept = [d for _, d in rows]
        scale = largest if normalize == "max" else sum(abs(d) for d in kept) / len(kept)
        for condition in values:
            in_condition = [d / scale for c, d in rows if c == condition]
            if in_condition:
                values[condition].append(sum(in_condition) / len(in_condition))
    return {c: tuple(np.percentile(v, [2.5, 97.5])) for c, v in values.items()}


@pytest.mark.parametrize("normalize", ["max", "mean"])
def test_cluster_interval_resamples_clusters_like_a_plain_loop(write_pairs, normalize: str) -> None:
    frame = pd.DataFrame(
        {
            "img1": [f"id{k}/a.png" for k in range(5) for _ in range(2)],
            "img2": [f"id{k}/{n}.png" for k in range(5) for n in ("b", "c")],
            "condition": ["near", "far"] * 5,
            "cluster": [f"id{k}" for k in range(5) for _ in range(2)],
        }
    )
    pairs_file, images = write_pairs(frame)
    task = ConditionedAverageDistances(
        pairs_file_path=pairs_file,
        images_path=images,
        normalize=normalize,
        cluster_column="cluster",
        n_bootstrap=200,
        seed=3,
    )
    distances = np.random.default_rng(1).uniform(0.1, 1.0, len(frame))
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=distances))
    expected = loop_cluster_bootstrap(frame, distances, normalize, 200, 3)
    assert (result["Mean Value CI Unit"] == "clusters of 'cluster' (bootstrap)").all()
    for row in result.to_dict("records"):
        low, high = expected[row["Condition"]]
        assert row["Mean Value CI Low"] == pytest.approx(low, abs=1e-12)
        assert row["Mean Value CI High"] == pytest.approx(high, abs=1e-12)


@pytest.mark.parametrize("normalize", ["max", "mean", "none"])
def test_image_interval_is_the_pair_graph_interval_of_the_scaled_mean(write_pairs, normalize: str) -> None:
    names = [f"p{i}.png" for i in range(10)]
    first = [0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 5, 6]
    second = [1, 2, 3, 4, 5, 9, 4, 5, 5, 7, 8, 9, 0, 1, 8, 2]
    frame = pd.DataFrame(
        {
            "img1": [names[i] for i in first],
            "img2": [names[i] for i in second],
            "condition": ["near", "far"] * 8,
        }
    )
    pairs_file, images = write_pairs(frame)
    task = ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images, normalize=normalize)
    distances = np.random.default_rng(1).uniform(0.1, 1.0, len(frame))
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=distances))
    scale = {"max": distances.max(), "mean": distances.mean(), "none": 1.0}[normalize]
    for row in result.to_dict("records"):
        near = (frame["condition"] == row["Condition"]).to_numpy()
        value = distances[near].mean() / scale
        terms = [(distances, near, 1 / scale)]
        if normalize == "mean":  # the scale is a mean too: value = m / s, d value / d s = -value / s
            terms.append((distances, np.ones(len(frame), bool), -value / scale))
        expected = stats.pair_graph_interval(value, terms, np.array(first), np.array(second), 10)
        assert row["Mean Value"] == pytest.approx(value, rel=1e-12)
        assert (row["Mean Value CI Low"], row["Mean Value CI High"]) == pytest.approx(expected, rel=1e-12)


def test_mean_normalisation_is_less_sensitive_to_one_pair(write_pairs) -> None:
    frame = pd.DataFrame(
        {
            "img1": [f"a{i}.png" for i in range(40)],
            "img2": [f"b{i}.png" for i in range(40)],
            "condition": ["x", "y"] * 20,
        }
    )
    pairs_file, images = write_pairs(frame)
    distances = np.random.default_rng(2).uniform(0.4, 0.6, 40)
    outlier = distances.copy()
    outlier[1] = 2.0  # one pair of condition "y" becomes extreme

    def mean_x(normalize: str, values: np.ndarray) -> float:
        task = ConditionedAverageDistances(
            pairs_file_path=pairs_file, images_path=images, normalize=normalize, n_bootstrap=10
        )
        result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=values))
        return float(result.set_index("Condition").loc["x", "Mean Value"])

    moved_by_max = abs(mean_x("max", outlier) - mean_x("max", distances))
    moved_by_mean = abs(mean_x("mean", outlier) - mean_x("mean", distances))
    assert moved_by_max > 0.5  # condition x never changed, yet its normalised mean moves
    assert moved_by_mean < moved_by_max / 5
    np.testing.assert_allclose(mean_x("mean", distances), distances[::2].mean() / distances.mean())


def test_normalize_accepts_the_documented_names(write_pairs) -> None:
    pairs_file, images = write_pairs(
        pd.DataFrame({"img1": ["a.png", "b.png"], "img2": ["c.png", "d.png"], "condition": ["x", "y"]})
    )
    assert ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images).normalize == "mean"
    assert (
        ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images, normalize=True).normalize
        == "max"
    )
    with pytest.raises(ConfigError, match="normalize must be one of max, mean, none"):
        ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images, normalize="median")


def test_conditions_keep_first_appearance_order_not_alphabetical(write_pairs) -> None:
    frame = pd.DataFrame(
        {
            "img1": [f"a{i}.png" for i in range(6)],
            "img2": [f"b{i}.png" for i in range(6)],
            "condition": ["zeta", "alpha ", "zeta", "mid", "alpha", "mid"],
        }
    )
    pairs_file, images = write_pairs(frame)
    task = ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images)
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=[1, 2, 3, 4, 5, 6.0]))
    assert result["Condition"].tolist() == ["zeta", "alpha", "mid"]
    np.testing.assert_allclose(result["Mean Value"], [2 / 3.5, 3.5 / 3.5, 5 / 3.5])  # over the mean, 3.5


def test_all_zero_distances_do_not_divide_by_zero(write_pairs) -> None:
    frame = pd.DataFrame({"img1": ["a.png", "b.png"], "img2": ["c.png", "d.png"], "condition": ["x", "y"]})
    pairs_file, images = write_pairs(frame)
    task = ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images)
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=[0.0, 0.0]))
    assert result["Mean Value"].tolist() == [0.0, 0.0]


def test_critical_features_conditions(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "critical_features_conditions.csv"
    task = ConditionedAverageDistances(
        pairs_file_path=pairs_file, images_path=images_for(pairs_file), condition_column="cond"
    )
    assert task.conditions() == ["non_critical_changes", "critical_changes", "same", "diff"]


def test_default_condition_column_missing_names_existing_columns(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "critical_features_conditions.csv"
    with pytest.raises(DataError, match=r"no column 'condition'.*'img1', 'img2', 'cond'.*condition_column="):
        ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images_for(pairs_file))


def test_empty_condition_cell_is_reported(write_pairs) -> None:
    pairs_file, images = write_pairs(
        pd.DataFrame({"img1": ["a.png", "b.png"], "img2": ["c.png", "d.png"], "condition": ["x", "  "]})
    )
    with pytest.raises(DataError, match=r"'condition' is empty for pair 2"):
        ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images)


def test_plot_one_bar_plot_per_condition(write_pairs, tmp_path: Path) -> None:
    pairs_file, images = write_pairs(
        pd.DataFrame({"img1": ["a.png", "b.png"], "img2": ["c.png", "d.png"], "condition": ["x", "y"]})
    )
    task = ConditionedAverageDistances(name="views", pairs_file_path=pairs_file, images_path=images)
    performances = pd.DataFrame(
        {
            "Model Name": ["m"] * 4,
            "Layer Name": ["l1", "l1", "l2", "l2"],
            "Condition": ["x", "y", "x", "y"],
            "Mean Value": [0.2, 0.4, 0.3, 0.5],
        }
    )
    written = task.plot(tmp_path / "plots", performances)
    assert sorted(p.name for p in written) == [
        "views_x_Mean_Value.png",
        "views_x_Mean_Value.svg",
        "views_y_Mean_Value.png",
        "views_y_Mean_Value.svg",
    ]
