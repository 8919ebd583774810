"""Verification metrics against sklearn, scipy and plain-loop references."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import roc_curve

from facebench.errors import ConfigError, DataError
from facebench.pairs import RepeatedPairsWarning
from facebench_tasks import stats
from facebench_tasks.accuracy import AccuracyTask


def synthetic(n: int, seed: int, separation: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels (True = same) and similarity scores where same pairs score higher on average."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < 0.5
    scores = separation * labels + rng.normal(size=n)
    return labels, scores


def make_task(write_pairs, labels: np.ndarray, **options) -> AccuracyTask:
    n = labels.size
    frame = pd.DataFrame(
        {
            "img1": [f"a{i % 20}.png" for i in range(n)],
            "img2": [f"b{i % 23}_{i // 460}.png" for i in range(n)],
            "same": labels,
        }
    )
    frame["same"] = frame["same"].astype(int)
    pairs_file, images = write_pairs(frame)
    return AccuracyTask(pairs_file_path=pairs_file, images_path=images, label_column="same", **options)


# --- plain-loop references --------------------------------------------------------------------
def loop_accuracy(labels, scores, threshold) -> float:
    correct = 0
    for label, score in zip(labels, scores, strict=True):
        correct += (score >= threshold) == label
    return correct / len(labels)


def loop_best_threshold(labels, scores) -> float:
    """Best training accuracy over 'same if score >= s' for every distinct s (and +inf); the
    highest s on ties; then halfway down to the next lower distinct score."""
    candidates = [math.inf, *sorted(set(scores.tolist()), reverse=True)]
    best, best_accuracy = 0, -1.0
    for k, candidate in enumerate(candidates):
        accuracy = loop_accuracy(labels, scores, candidate)
        if accuracy > best_accuracy:
            best, best_accuracy = k, accuracy
    if best == 0:
        return math.inf
    if best + 1 < len(candidates):
        return (candidates[best] + candidates[best + 1]) / 2
    return candidates[best]


def loop_ten_fold(labels, scores, n_folds=10) -> tuple[float, float]:
    fold_of = {}
    for value in (True, False):
        members = [i for i in range(len(labels)) if labels[i] == value]
        sizes = [len(members) // n_folds + (1 if k < len(members) % n_folds else 0) for k in range(n_folds)]
        start = 0
        for k, size in enumerate(sizes):
            for i in members[start : start + size]:
                fold_of[i] = k
            start += size
    accuracies = []
    for k in range(n_folds):
        held = [i for i in range(len(labels)) if fold_of[i] == k]
        train = [i for i in range(len(labels)) if fold_of[i] != k]
        threshold = loop_best_threshold(labels[train], scores[train])
        accuracies.append(loop_accuracy(labels[held], scores[held], threshold))
    return float(np.mean(accuracies)), float(np.std(accuracies))


def loop_tar_at_far(labels, scores, far) -> float:
    positives, negatives = scores[labels], scores[~labels]
    best = 0.0
    for threshold in [math.inf, *set(scores.tolist())]:
        if np.mean(negatives >= threshold) <= far:
            best = max(best, float(np.mean(positives >= threshold)))
    return best


# --- tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_mann_whitney_and_youden_matches_sklearn_roc(write_pairs, seed: int) -> None:
    labels, scores = synthetic(300, seed)
    task = make_task(write_pairs, labels)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores)).iloc[0]

    u = scipy_stats.mannwhitneyu(scores[labels], scores[~labels]).statistic
    assert row["AUC"] == pytest.approx(u / (labels.sum() * (~labels).sum()), abs=1e-12)

    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr - fpr))
    assert row["Optimal Threshold"] == pytest.approx(thresholds[best])
    at_roc_point = (tpr[best] * labels.sum() + (1 - fpr[best]) * (~labels).sum()) / labels.size
    assert row["In-Sample Accuracy"] == pytest.approx(at_roc_point, abs=1e-12)
    in_sample = loop_accuracy(labels, scores, thresholds[best])
    assert row["In-Sample Accuracy"] == pytest.approx(in_sample, abs=1e-12)
    assert row["Distance Metric"] == "cosine"


def test_sample_exactly_at_the_threshold_is_scored_as_the_roc_scores_it(write_pairs) -> None:
    # Youden's threshold is the score of a same pair (0.7); the old '>' scoring called it
    # different, reporting 5/6 while the ROC point it came from has 6/6 correct.
    labels = np.array([True, True, True, False, False, False])
    scores = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.2])
    task = make_task(write_pairs, labels, n_folds=3)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores)).iloc[0]
    assert row["Optimal Threshold"] == pytest.approx(0.7)
    assert row["In-Sample Accuracy"] == 1.0
    assert np.mean((scores > 0.7) == labels) == pytest.approx(5 / 6)  # the bug this guards against


def test_unbounded_metric_scores_negative_distance(write_pairs) -> None:
    labels, scores = synthetic(200, 4)
    task = make_task(write_pairs, labels)
    euclidean = make_task(write_pairs, labels, distance_metric="euclidean")
    distances = 3.0 - scores  # same ordering either way; thresholds differ by the mapping
    bounded = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=distances)).iloc[0]
    unbounded = euclidean.compute_task_performance(
        euclidean.pairs_df.assign(model_computed_distance=distances)
    ).iloc[0]
    assert bounded["AUC"] == pytest.approx(unbounded["AUC"])
    assert bounded["In-Sample Accuracy"] == pytest.approx(unbounded["In-Sample Accuracy"])
    assert bounded["Optimal Threshold"] == pytest.approx(1.0 - (3.0 - thresholds_of(labels, scores)))
    assert unbounded["Optimal Threshold"] == pytest.approx(-(3.0 - thresholds_of(labels, scores)))
    assert unbounded["Distance Metric"] == "euclidean"


def thresholds_of(labels, scores) -> float:
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return float(thresholds[int(np.argmax(tpr - fpr))])


@pytest.mark.parametrize(("n", "seed"), [(600, 0), (53, 1), (50, 7)])
def test_ten_fold_accuracy_matches_plain_loop_protocol(write_pairs, n: int, seed: int) -> None:
    labels, scores = synthetic(n, seed)
    scores = np.round(scores, 1)  # ties between scores, as with coarse distances
    task = make_task(write_pairs, labels)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores)).iloc[0]
    mean, std = loop_ten_fold(labels, 1.0 - (1.0 - scores))  # the scores the task sees
    assert row["Cross-Validated Accuracy"] == pytest.approx(mean, abs=1e-12)
    assert row["Cross-Validated Accuracy Std"] == pytest.approx(std, abs=1e-12)


def test_threshold_chosen_on_the_same_pairs_is_optimistic_on_small_sets() -> None:
    # On 50 pairs the in-sample accuracy beats the cross-validated one on average.
    gaps = []
    for seed in range(40):
        labels, scores = synthetic(50, seed, separation=0.8)
        in_sample = stats.accuracy_at_threshold(labels, scores, stats.best_accuracy_threshold(labels, scores))
        gaps.append(in_sample - stats.cross_validated_accuracy(labels, scores, 10)[0].mean())
    assert np.mean(gaps) > 0.02


def test_folds_are_lfws_for_both_file_orders() -> None:
    # LFW's pairs.txt: each fold lists 300 same then 300 different pairs.
    fold_major = np.tile(np.r_[np.ones(300, bool), np.zeros(300, bool)], 10)
    folds = stats.contiguous_folds(fold_major, 10)
    assert all(np.array_equal(f, np.arange(600 * k, 600 * (k + 1))) for k, f in enumerate(folds))
    # The lab's file: the same pairs of folds 1..10, then the different pairs of folds 1..10.
    label_major = np.r_[np.ones(3000, bool), np.zeros(3000, bool)]
    folds = stats.contiguous_folds(label_major, 10)
    for k, fold in enumerate(folds):
        expected = np.r_[np.arange(300 * k, 300 * (k + 1)), 3000 + np.arange(300 * k, 300 * (k + 1))]
        assert np.array_equal(fold, expected)


def test_folds_match_sklearn_stratified_kfold_when_sizes_divide() -> None:
    from sklearn.model_selection import StratifiedKFold

    labels = np.random.default_rng(3).permutation(np.r_[np.ones(70, bool), np.zeros(130, bool)])
    theirs = [test for _, test in StratifiedKFold(10).split(np.zeros(labels.size), labels)]
    ours = stats.contiguous_folds(labels, 10)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))


@pytest.mark.parametrize("seed", [0, 3])
def test_eer_matches_brentq_on_interpolated_roc(seed: int) -> None:
    labels, scores = synthetic(400, seed)
    fpr, tpr, _ = roc_curve(labels, scores)
    reference = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    assert stats.equal_error_rate(labels, scores) == pytest.approx(reference, abs=1e-9)


def test_tar_at_far_with_enough_negative_pairs(write_pairs) -> None:
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.r_[np.ones(300, bool), np.zeros(1200, bool)])
    scores = np.where(labels, 2.0, 0.0) + rng.normal(size=labels.size)
    task = make_task(write_pairs, labels)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores)).iloc[0]
    for far in (1e-3, 1e-2):
        assert row[f"TAR at FAR {far:g}"] == pytest.approx(loop_tar_at_far(labels, scores, far), abs=1e-12)
    assert 0 < row["TAR at FAR 0.001"] < row["TAR at FAR 0.01"] < 1


def test_tar_at_far_is_left_empty_without_enough_negative_pairs(write_pairs) -> None:
    labels, scores = synthetic(300, 2)  # about 150 negatives: FAR 1e-2 measurable, 1e-3 not
    task = make_task(write_pairs, labels)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores)).iloc[0]
    assert math.isnan(row["TAR at FAR 0.001"])
    assert row["TAR at FAR 0.01"] == pytest.approx(loop_tar_at_far(labels, scores, 1e-2))


def test_reads_the_lab_files_label_column(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "other_race_same_asian.csv"
    images = images_for(pairs_file)
    task = AccuracyTask(pairs_file_path=pairs_file, images_path=images, label_column="same", n_folds=4)
    assert task.pairs_df["same"].tolist() == [1, 1, 0, 0, 1, 1, 0, 1, 1, 0]
    assert task.pairs_df["img1"].iloc[2] == "F_A_n006777_0046_01.jpg"


def test_wrong_label_column_names_the_existing_columns(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "inversion_upright_same.csv"
    with pytest.raises(DataError, match=r"no column 'truth'.*'img1', 'img2', 'same'.*label_column="):
        AccuracyTask(pairs_file_path=pairs_file, images_path=images_for(pairs_file))


def test_labels_must_be_same_or_different_and_both_present(write_pairs) -> None:
    frame = pd.DataFrame({"img1": ["a.png", "b.png"], "img2": ["c.png", "d.png"], "truth": [1, 3]})
    pairs_file, images = write_pairs(frame)
    with pytest.raises(DataError, match="'truth' must hold same/different labels"):
        AccuracyTask(pairs_file_path=pairs_file, images_path=images)
    frame["truth"] = [1, 1]
    frame.to_csv(pairs_file, index=False)
    with pytest.raises(DataError, match=r"every pair .* is labelled same"):
        AccuracyTask(pairs_file_path=pairs_file, images_path=images)


def test_plot_draws_cross_validated_and_auc_bars(write_pairs, tmp_path: Path) -> None:
    labels, _ = synthetic(40, 0)
    task = make_task(write_pairs, labels)
    performances = pd.DataFrame(
        {
            "Model Name": ["m", "m"],
            "Layer Name": ["l1", "l2"],
            "In-Sample Accuracy": [0.7, 0.8],
            "AUC": [0.75, 0.85],
            "Cross-Validated Accuracy": [0.65, 0.78],
            "Cross-Validated Accuracy Std": [0.05, 0.04],
        }
    )
    written = task.plot(tmp_path / "plots", performances)
    assert len(written) == 4 and all(p.is_file() for p in written)  # PNG + SVG each
    assert not any("In-Sample" in p.name for p in written)


def test_headline_is_held_out_and_in_sample_accuracy_is_labelled(write_pairs) -> None:
    labels, scores = synthetic(120, 7)
    task = make_task(write_pairs, labels)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores))
    columns = list(row.columns)
    assert columns[:3] == ["Cross-Validated Accuracy", "Cross-Validated Accuracy Std", "AUC"]
    assert "Accuracy" not in columns and "In-Sample Accuracy" in columns
    assert task.plot_columns == ("Cross-Validated Accuracy", "AUC")
    # the lab's human "Accuracy" percentiles are compared with the held-out accuracy
    assert task.human_columns == {"Cross-Validated Accuracy": "Accuracy"}


def test_more_folds_than_pairs_of_a_label_is_refused_up_front(write_pairs) -> None:
    labels = np.array([True] * 4 + [False] * 12)
    with pytest.raises(DataError, match=r"n_folds=10 .* only 4 same pairs; set n_folds to at most 4"):
        make_task(write_pairs, labels)
    task = make_task(write_pairs, labels, n_folds=4)
    scores = np.linspace(0, 1, labels.size)
    row = task.compute_task_performance(task.pairs_df.assign(model_computed_distance=1.0 - scores)).iloc[0]
    assert np.isfinite(row["Cross-Validated Accuracy"])


@pytest.mark.parametrize("different", [1, 2, 3])
def test_the_advice_on_n_folds_is_a_value_it_accepts(write_pairs, different: int) -> None:
    labels = np.array([True] * 12 + [False] * different)
    with pytest.raises(DataError, match=r"n_folds=10 .* only \d+ different pairs") as refused:
        make_task(write_pairs, labels)
    advised = [int(n) for n in re.findall(r"set n_folds to at most (\d+)", str(refused.value))]
    if different < 2:  # no n_folds works: the message says to add pairs, never "n_folds=1"
        assert not advised and "add pairs" in str(refused.value)
        with pytest.raises(ConfigError):
            make_task(write_pairs, labels, n_folds=different)
    else:
        assert advised == [different]
        assert make_task(write_pairs, labels, n_folds=different).n_folds == different


def test_a_repeated_pair_is_warned_about_with_its_count(write_pairs) -> None:
    labels, _ = synthetic(40, 3)
    frame = pd.DataFrame({"img1": [f"a{i}.png" for i in range(40)], "img2": [f"b{i}.png" for i in range(40)]})
    frame["truth"] = labels.astype(int)
    repeated = pd.concat(
        [frame, frame.iloc[[0, 5]], frame.iloc[[7]].rename(columns={"img1": "img2", "img2": "img1"})]
    )
    pairs_file, images = write_pairs(repeated)
    with pytest.warns(RepeatedPairsWarning, match=r"3 row\(s\) repeat an earlier pair .*: pairs 41, 42, 43 "):
        AccuracyTask(pairs_file_path=pairs_file, images_path=images)
