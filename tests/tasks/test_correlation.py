"""Correlation with human distances: scipy-independent references and an image-level bootstrap."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, pearsonr, rankdata, spearmanr

from facebench.errors import ConfigError, DataError
from facebench_tasks.correlation import CorrelationTask, UninformativeIntervalWarning


def all_pairs(n_faces: int, seed: int) -> pd.DataFrame:
    """Every pair of ``n_faces`` faces with human distances, like the similarity files."""
    rng = np.random.default_rng(seed)
    faces = [f"face_{i:02d}.png" for i in range(n_faces)]
    rows = [(faces[i], faces[j]) for i in range(n_faces) for j in range(i + 1, n_faces)]
    frame = pd.DataFrame(rows, columns=["img1", "img2"])
    frame["distance"] = rng.uniform(1, 7, len(frame))
    return frame


def model_distances(frame: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.1 * frame["distance"].to_numpy() + rng.normal(scale=0.3, size=len(frame))


def make_task(write_pairs, frame: pd.DataFrame, **options) -> CorrelationTask:
    pairs_file, images = write_pairs(frame)
    return CorrelationTask(pairs_file_path=pairs_file, images_path=images, **options)


def loop_image_bootstrap(frame, model, human, n_resamples, seed, correlate) -> tuple[float, float]:
    """Draw the images with replacement; a pair of images drawn a and b times enters a*b times."""
    images = list(dict.fromkeys([*frame["img1"], *frame["img2"]]))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(images), len(images))
        counts = {image: int(np.sum(drawn == k)) for k, image in enumerate(images)}
        xs, ys = [], []
        for i, (a, b) in enumerate(zip(frame["img1"], frame["img2"], strict=True)):
            for _ in range(counts[a] * counts[b]):
                xs.append(model[i])
                ys.append(human[i])
        if len(xs) >= 3:
            values.append(correlate(np.array(xs), np.array(ys)))
    values = np.array(values)
    values = values[np.isfinite(values)]
    return tuple(np.percentile(values, [2.5, 97.5]))


def pearson_reference(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def test_pearson_default_matches_plain_formula(write_pairs) -> None:
    frame = all_pairs(12, 0)
    task = make_task(write_pairs, frame, n_bootstrap=10)
    model = model_distances(frame, 1)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    assert row["Correlation Score"] == pytest.approx(pearson_reference(model, frame["distance"].to_numpy()))
    assert list(row.index) == [
        "Correlation Score",
        "Correlation Score CI Low",
        "Correlation Score CI High",
        "Correlation Score CI Unit",
        "Distance Metric",
    ]


@pytest.mark.parametrize(("name", "reference"), [("pearson", pearsonr), ("spearman", spearmanr)])
def test_named_correlations_match_scipy(write_pairs, name: str, reference) -> None:
    frame = all_pairs(12, 5)
    frame["distance"] = frame["distance"].round(0)  # ties, as in averaged ratings
    task = make_task(write_pairs, frame, correlation_function=name, n_bootstrap=10)
    model = model_distances(frame, 6)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    assert row["Correlation Score"] == pytest.approx(reference(model, frame["distance"]).statistic, abs=1e-12)


def test_spearman_matches_pearson_of_ranks(write_pairs) -> None:
    frame = all_pairs(12, 2)
    task = make_task(write_pairs, frame, correlation_function="spearman", n_bootstrap=10)
    model = model_distances(frame, 3)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    expected = pearson_reference(rankdata(model), rankdata(frame["distance"]))
    assert row["Correlation Score"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "function",
    [
        pytest.param(lambda x, y: np.corrcoef(x, y), id="matrix"),
        pytest.param(lambda x, y: (pearson_reference(x, y), 0.01), id="tuple"),
        pytest.param(pearson_reference, id="float"),
    ],
)
def test_callable_returning_matrix_tuple_or_float(write_pairs, function) -> None:
    frame = all_pairs(10, 4)
    task = make_task(write_pairs, frame, correlation_function=function, n_bootstrap=50)
    model = model_distances(frame, 5)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    assert row["Correlation Score"] == pytest.approx(pearson_reference(model, frame["distance"].to_numpy()))
    low, high = loop_image_bootstrap(frame, model, frame["distance"].to_numpy(), 50, 0, pearson_reference)
    assert row["Correlation Score CI Low"] == pytest.approx(low)
    assert row["Correlation Score CI High"] == pytest.approx(high)


def test_scipy_result_objects_work_as_correlation_functions(write_pairs) -> None:
    frame = all_pairs(9, 6)
    task = make_task(write_pairs, frame, correlation_function=kendalltau, n_bootstrap=10)
    model = model_distances(frame, 7)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    assert row["Correlation Score"] == pytest.approx(kendalltau(model, frame["distance"]).statistic)


def test_bad_correlation_function_output_is_reported(write_pairs) -> None:
    frame = all_pairs(6, 0)
    task = make_task(write_pairs, frame, correlation_function=lambda x, y: np.ones(5), n_bootstrap=5)
    with pytest.raises(ConfigError, match="must return a number"):
        task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model_distances(frame, 0)))
    with pytest.raises(ConfigError, match="'pearson' or 'spearman'"):
        make_task(write_pairs, frame, correlation_function="kendal")


def test_bootstrap_resamples_images_as_the_reference_loop(write_pairs) -> None:
    frame = all_pairs(10, 8)
    task = make_task(write_pairs, frame, n_bootstrap=200, seed=11)
    model = model_distances(frame, 9)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    low, high = loop_image_bootstrap(frame, model, frame["distance"].to_numpy(), 200, 11, pearson_reference)
    assert row["Correlation Score CI Low"] == pytest.approx(low)
    assert row["Correlation Score CI High"] == pytest.approx(high)
    assert low < row["Correlation Score"] < high


def test_bootstrap_reproducible_with_a_seed_and_different_with_another(write_pairs) -> None:
    frame = all_pairs(10, 10)
    model = model_distances(frame, 11)

    def interval(seed: int) -> tuple[float, float]:
        task = make_task(write_pairs, frame, n_bootstrap=100, seed=seed)
        row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
        return row["Correlation Score CI Low"], row["Correlation Score CI High"]

    assert interval(1) == interval(1)
    assert interval(1) != interval(2)


def test_image_bootstrap_is_wider_than_a_pair_bootstrap_when_images_drive_distances(write_pairs) -> None:
    # Distances dominated by a per-image effect: pairs sharing an image are not independent, so
    # resampling pairs understates the uncertainty.
    rng = np.random.default_rng(12)
    frame = all_pairs(12, 12)
    effect = {f"face_{i:02d}.png": rng.normal() for i in range(12)}
    image_effect = frame["img1"].map(effect).to_numpy() + frame["img2"].map(effect).to_numpy()
    frame["distance"] = image_effect + rng.normal(scale=0.5, size=len(frame))
    model = image_effect + rng.normal(scale=0.5, size=len(frame))
    task = make_task(write_pairs, frame, n_bootstrap=300)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    pair_rng = np.random.default_rng(0)
    pair_values = []
    for _ in range(300):
        keep = pair_rng.integers(0, len(frame), len(frame))
        pair_values.append(pearson_reference(model[keep], frame["distance"].to_numpy()[keep]))
    pair_low, pair_high = np.percentile(pair_values, [2.5, 97.5])
    assert row["Correlation Score CI High"] - row["Correlation Score CI Low"] > 1.5 * (pair_high - pair_low)


def test_lab_file_with_extra_column(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "critical_features_critical_distances.csv"
    task = CorrelationTask(pairs_file_path=pairs_file, images_path=images_for(pairs_file), n_bootstrap=20)
    human = task.pairs_df["distance"].to_numpy()
    model = np.linspace(0.1, 0.5, len(human))
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=model)).iloc[0]
    assert row["Correlation Score"] == pytest.approx(pearson_reference(model, human))


def test_wrong_distance_column_names_existing_columns(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "israeli_familiar_distances.csv"
    with pytest.raises(DataError, match=r"no column 'rating'.*'img1', 'img2', 'distance'.*distance_column="):
        CorrelationTask(
            pairs_file_path=pairs_file, images_path=images_for(pairs_file), distance_column="rating"
        )


def test_human_distances_must_be_numbers(write_pairs) -> None:
    frame = all_pairs(4, 0).astype({"distance": object})
    frame.loc[2, "distance"] = "n/a"
    with pytest.raises(DataError, match=r"'distance' must hold numbers; found 'n/a' at pair 3"):
        make_task(write_pairs, frame)


def test_constant_human_distances_are_refused_up_front(write_pairs) -> None:
    frame = all_pairs(5, 0).assign(distance=3.0)
    with pytest.raises(DataError, match=r"every value of column 'distance' is 3.*undefined"):
        make_task(write_pairs, frame)


def test_constant_model_distances_fail_instead_of_a_nan_score(write_pairs) -> None:
    frame = all_pairs(5, 0)
    task = make_task(write_pairs, frame, n_bootstrap=10)
    with pytest.raises(DataError, match=r"undefined \(NaN\) \(the model's distances are all equal"):
        task.compute_task_performance(frame.assign(model_computed_distance=0.25))


def test_plot_bars_and_model_vs_human_scatter(write_pairs, tmp_path: Path) -> None:
    frame = all_pairs(6, 0)
    task = make_task(write_pairs, frame, n_bootstrap=10)
    performances = pd.DataFrame(
        {
            "Model Name": ["m", "m"],
            "Layer Name": ["l1", "l2"],
            "Correlation Score": [0.3, 0.5],
            "Correlation Score CI Low": [0.1, 0.3],
            "Correlation Score CI High": [0.45, 0.6],
        }
    )
    model = model_distances(frame, 0)
    long = pd.concat(
        [
            task.pairs_df.assign(**{"Model Name": "m", "Layer Name": layer, "model_computed_distance": model})
            for layer in ("l1", "l2")
        ]
    )
    written = task.plot(tmp_path / "plots", performances, pairs_distances=long)
    assert len(written) == 6
    assert sum("scatter" in p.name for p in written) == 4


def test_interval_stays_inside_minus_one_one(write_pairs) -> None:
    # an exact linear relation: rounding puts resampled correlations at 1.0000000000000002
    frame = all_pairs(5, 0)
    frame["distance"] = np.random.default_rng(0).uniform(1, 7, len(frame))
    task = make_task(write_pairs, frame, n_bootstrap=200)
    row = task.compute_task_performance(frame.assign(model_computed_distance=0.37 * frame["distance"] + 0.11))
    assert -1.0 <= row["Correlation Score CI Low"].iloc[0] <= row["Correlation Score CI High"].iloc[0] <= 1.0


def test_an_interval_from_few_pairs_says_it_is_not_informative(write_pairs) -> None:
    frame = pd.DataFrame({"img1": ["a.png", "b.png", "c.png"], "img2": ["d.png", "e.png", "f.png"]})
    frame["distance"] = [1.0, 2.0, 4.0]
    task = make_task(write_pairs, frame, n_bootstrap=50)
    with pytest.warns(UninformativeIntervalWarning, match=r"only 3 pairs \(6 images\).*not informative"):
        task.compute_task_performance(frame.assign(model_computed_distance=[0.2, 0.1, 0.5]))
    enough = all_pairs(5, 1)  # 10 pairs: no warning
    task = make_task(write_pairs, enough, n_bootstrap=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UninformativeIntervalWarning)
        task.compute_task_performance(enough.assign(model_computed_distance=model_distances(enough, 1)))
