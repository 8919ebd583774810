"""Mean (normalised) distance per condition, conditions in file order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.errors import DataError
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
    )
    distances = np.random.default_rng(0).uniform(0.2, 1.6, len(task.pairs_df))
    result = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=distances))
    expected = loop_means(task.pairs_df["cond"], distances, normalize)
    assert list(result.columns) == ["Condition", "Mean Value", "Distance Metric"]
    assert result["Condition"].tolist() == [
        "Frontal - Frontal - Same",
        "Frontal - Quarter Left",
        "Frontal - Half Left",
        "Frontal - Frontal - Diff",
    ]
    np.testing.assert_allclose(result["Mean Value"], [expected[c] for c in result["Condition"]], rtol=1e-12)
    assert (result["Distance Metric"] == "cosine").all()


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
