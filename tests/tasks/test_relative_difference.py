"""(m1 - m2) / (m1 + m2) with an explicit group order, per-identity averaging, bootstrap CI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebench.errors import ConfigError, DataError
from facebench_tasks.relative_difference import RelativeDifferenceTask, relative_difference_interval


def thatcher_pairs(n_identities: int = 8, per_identity: int = 3, seed: int = 0) -> pd.DataFrame:
    """Upright and inverted pairs for several identities, with model distances."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, shift in (("upright", 0.6), ("inverted", 0.3)):
        for identity in range(n_identities):
            for k in range(per_identity):
                rows.append(
                    {
                        "img1": f"{group}/id{identity}_{k}.png",
                        "img2": f"{group}/id{identity}_{k}_thatcher.png",
                        "condition": group,
                        "identity": f"id{identity}",
                        "model_computed_distance": shift
                        + 0.1 * identity / n_identities
                        + rng.uniform(0, 0.1),
                    }
                )
    return pd.DataFrame(rows)


def make_task(write_pairs, frame: pd.DataFrame, **options) -> RelativeDifferenceTask:
    pairs_file, images = write_pairs(frame.drop(columns="model_computed_distance"))
    options.setdefault("groups", ("upright", "inverted"))
    return RelativeDifferenceTask(pairs_file_path=pairs_file, images_path=images, **options)


def run(task: RelativeDifferenceTask, frame: pd.DataFrame) -> pd.Series:
    return task.compute_task_performance(frame).iloc[0]


def test_matches_plain_means(write_pairs) -> None:
    frame = thatcher_pairs()
    row = run(make_task(write_pairs, frame), frame)
    d = frame["model_computed_distance"]
    m1, m2 = d[frame["condition"] == "upright"].mean(), d[frame["condition"] == "inverted"].mean()
    assert row["Relative Difference"] == pytest.approx((m1 - m2) / (m1 + m2))
    assert row['Group "upright" Mean'] == pytest.approx(m1)
    assert row['Group "inverted" Mean'] == pytest.approx(m2)
    assert row["Relative Difference"] > 0
    assert list(row.index) == [
        "Relative Difference",
        "Relative Difference CI Low",
        "Relative Difference CI High",
        "Relative Difference CI Unit",
        'Group "upright" Mean',
        'Group "inverted" Mean',
        "Distance Metric",
    ]
    assert row["Relative Difference CI Unit"] == "images (dyadic-robust t interval)"


def test_group_order_sets_the_sign(write_pairs) -> None:
    frame = thatcher_pairs()
    forward = run(make_task(write_pairs, frame), frame)
    backward = run(make_task(write_pairs, frame, groups=("inverted", "upright")), frame)
    assert backward["Relative Difference"] == pytest.approx(-forward["Relative Difference"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sign_and_value_stable_under_row_shuffles(write_pairs, seed: int) -> None:
    frame = thatcher_pairs()
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    assert not shuffled["condition"].equals(frame["condition"])
    original = run(make_task(write_pairs, frame), frame)
    reordered = run(make_task(write_pairs, shuffled), shuffled)
    assert reordered["Relative Difference"] == pytest.approx(original["Relative Difference"], rel=1e-12)
    assert np.sign(reordered["Relative Difference"]) == 1


def test_inverted_first_in_the_file_keeps_the_sign(write_pairs) -> None:
    frame = thatcher_pairs()
    inverted_first = pd.concat(
        [frame[frame["condition"] == "inverted"], frame[frame["condition"] == "upright"]]
    )
    row = run(make_task(write_pairs, inverted_first), inverted_first)
    assert row["Relative Difference"] > 0


def test_per_identity_averaging_first(write_pairs) -> None:
    frame = thatcher_pairs(n_identities=5)
    frame = frame[~((frame["identity"] == "id0") & (frame["img1"].str.endswith("_0.png")))]  # unequal counts
    row = run(make_task(write_pairs, frame, identity_column="identity"), frame)
    means = {}
    for group in ("upright", "inverted"):
        per_identity = []
        for identity in sorted(set(frame["identity"])):
            rows = frame[(frame["condition"] == group) & (frame["identity"] == identity)]
            per_identity.append(rows["model_computed_distance"].mean())
        means[group] = np.mean(per_identity)
    m1, m2 = means["upright"], means["inverted"]
    assert row["Relative Difference"] == pytest.approx((m1 - m2) / (m1 + m2))
    plain = run(make_task(write_pairs, frame), frame)
    assert plain["Relative Difference"] != pytest.approx(row["Relative Difference"])


def test_bootstrap_resamples_identities_jointly_across_groups(write_pairs) -> None:
    frame = thatcher_pairs(n_identities=6)
    row = run(make_task(write_pairs, frame, identity_column="identity", n_bootstrap=200, seed=4), frame)
    per_identity = {
        g: frame[frame["condition"] == g].groupby("identity")["model_computed_distance"].mean()
        for g in ("upright", "inverted")
    }
    identities = list(pd.unique(frame["identity"]))  # codes in order of first appearance
    rng = np.random.default_rng(4)
    values = []
    for _ in range(200):
        drawn = [identities[i] for i in rng.integers(0, len(identities), len(identities))]
        first = per_identity["upright"][drawn].mean()  # the SAME identities in both groups
        second = per_identity["inverted"][drawn].mean()
        values.append((first - second) / (first + second))
    low, high = np.percentile(values, [2.5, 97.5])
    assert row["Relative Difference CI Low"] == pytest.approx(low, abs=1e-12)
    assert row["Relative Difference CI High"] == pytest.approx(high, abs=1e-12)
    assert low < row["Relative Difference"] < high


def test_without_identities_the_interval_is_over_images(write_pairs) -> None:
    frame = thatcher_pairs(n_identities=4, per_identity=2)
    # pairs share images: every upright original is also paired with the next identity's copy
    extra = frame.copy()
    extra["img2"] = np.roll(frame["img2"].to_numpy(), 2)
    extra["model_computed_distance"] = frame["model_computed_distance"] + 0.05
    frame = pd.concat([frame, extra], ignore_index=True)
    row = run(make_task(write_pairs, frame, n_bootstrap=150, seed=2), frame)
    expected = relative_difference_interval(
        frame["model_computed_distance"].to_numpy(),
        (frame["condition"] == "inverted").to_numpy(),
        frame["img1"].to_numpy(),
        frame["img2"].to_numpy(),
    )
    assert (row["Relative Difference CI Low"], row["Relative Difference CI High"]) == expected
    assert row["Relative Difference CI Low"] < row["Relative Difference"] < row["Relative Difference CI High"]
    # no resampling: the seed plays no part
    assert run(make_task(write_pairs, frame, seed=3), frame)["Relative Difference CI Low"] == expected[0]


def test_bootstrap_reproducible_with_a_seed_and_different_with_another(write_pairs) -> None:
    frame = thatcher_pairs()

    def interval(seed: int) -> tuple[float, float]:
        task = make_task(write_pairs, frame, identity_column="identity", n_bootstrap=100, seed=seed)
        row = run(task, frame)
        assert row["Relative Difference CI Unit"] == "identities (bootstrap)"
        return row["Relative Difference CI Low"], row["Relative Difference CI High"]

    assert interval(3) == interval(3)
    assert interval(3) != interval(4)


def test_other_groups_are_ignored(write_pairs) -> None:
    frame = thatcher_pairs()
    extra = frame.iloc[:4].assign(condition="control", model_computed_distance=100.0)
    extra["img1"] = extra["img1"].str.replace("upright/", "control/")
    extra["img2"] = extra["img2"].str.replace("upright/", "control/")
    both = pd.concat([extra, frame], ignore_index=True)
    assert run(make_task(write_pairs, both), both)["Relative Difference"] == pytest.approx(
        run(make_task(write_pairs, frame), frame)["Relative Difference"]
    )


def test_groups_are_required_and_must_exist(write_pairs) -> None:
    frame = thatcher_pairs(2, 1)
    with pytest.raises(ConfigError, match=r"needs groups=\(first, second\)"):
        make_task(write_pairs, frame, groups=None)
    with pytest.raises(ConfigError, match="two distinct values"):
        make_task(write_pairs, frame, groups=("upright", "upright"))
    with pytest.raises(DataError, match=r"group 'thatcher' does not occur.*'upright', 'inverted'"):
        make_task(write_pairs, frame, groups=("upright", "thatcher"))


def test_wrong_group_column_names_existing_columns(write_pairs) -> None:
    frame = thatcher_pairs(2, 1)
    with pytest.raises(
        DataError, match=r"no column 'orientation'.*'img1', 'img2', 'condition', 'identity'.*group_column="
    ):
        make_task(write_pairs, frame, group_column="orientation")
    with pytest.raises(DataError, match=r"no column 'person'.*identity_column="):
        make_task(write_pairs, frame, identity_column="person")


def test_works_on_the_lab_condition_file(fixtures: Path, images_for) -> None:
    pairs_file = fixtures / "critical_features_conditions.csv"
    task = RelativeDifferenceTask(
        pairs_file_path=pairs_file,
        images_path=images_for(pairs_file),
        group_column="cond",
        groups=("critical_changes", "non_critical_changes"),
        n_bootstrap=50,
    )
    distances = np.where(task.pairs_df["cond"] == "critical_changes", 0.6, 0.2)
    row = run(task, task.pairs_df.assign(model_computed_distance=distances))
    assert row["Relative Difference"] == pytest.approx((0.6 - 0.2) / (0.6 + 0.2))
