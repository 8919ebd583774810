"""Mean (normalised) distance per condition, conditions in file order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.errors import ConfigError, DataError
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
        "Distance Metric",
    ]
    assert result["Condition"].tolist() == [
        "Frontal - Frontal - Same",
        "Frontal - Quarter Left",
        "Frontal - Half Left",
        "Frontal - Frontal - Diff",
    ]
    np.testing.assert_allclose(result["Mean Value"], [expected[c] for c in result["Condition"]], rtol=1e-12)
    assert (result["Distance Metric"] == "cosine").all()


def loop_image_bootstrap(frame, distances, normalize: str, n_resamples: int, seed: int) -> dict[str, tuple]:
    """Per condition, the 2.5/97.5 percentiles over image resamples, written as plain loops."""
    images = list(pd.unique(pd.concat([frame["img1"], frame["img2"]])))
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {c: [] for c in pd.unique(frame["condition"])}
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(images), len(images))
        count = {name: int((drawn == i).sum()) for i, name in enumerate(images)}
        rows = []  # (condition, distance) with every copy of a pair of drawn images
        for a, b, c, d in zip(frame["img1"], frame["img2"], frame["condition"], distances, strict=True):
            rows += [(c, d)] * (count[a] * count[b])
        kept = [d for _, d in rows]
        if not kept:  # no pair survived this resample: every condition is undefined
            continue
        scale = max(abs(d) for d in kept) if normalize == "max" else sum(abs(d) for d in kept) / len(kept)
        for condition in values:
            in_condition = [d / scale for c, d in rows if c == condition]
            if in_condition:
                values[condition].append(sum(in_condition) / len(in_condition))
    return {c: tuple(np.percentile(v, [2.5, 97.5])) for c, v in values.items()}


@pytest.mark.parametrize("normalize", ["max", "mean"])
def test_interval_resamples_images_like_a_plain_loop(write_pairs, normalize: str) -> None:
    # 6 images in 9 pairs: pairs share images
    names = ["p0.png", "p1.png", "p2.png", "p3.png", "p4.png", "p5.png"]
    frame = pd.DataFrame(
        {
            "img1": [names[i] for i in (0, 0, 1, 1, 2, 2, 3, 3, 4)],
            "img2": [names[i] for i in (1, 2, 3, 4, 5, 0, 4, 5, 5)],
            "condition": ["near", "far", "near", "far", "near", "far", "near", "far", "near"],
        }
    )
    pairs_file, images = write_pairs(frame)
    task = ConditionedAverageDistances(
        pairs_file_path=pairs_file, images_path=images, normalize=normalize, n_bootstrap=200, seed=3
    )
    distances = np.random.default_rng(1).uniform(0.1, 1.0, len(frame))
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=distances))
    expected = loop_image_bootstrap(frame, distances, normalize, 200, 3)
    for row in result.to_dict("records"):
        low, high = expected[row["Condition"]]
        assert row["Mean Value CI Low"] == pytest.approx(low, abs=1e-12)
        assert row["Mean Value CI High"] == pytest.approx(high, abs=1e-12)


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
    assert ConditionedAverageDistances(pairs_file_path=pairs_file, images_path=images).normalize == "max"
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
    np.testing.assert_allclose(result["Mean Value"], [4 / 12, 7 / 12, 10 / 12])


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
