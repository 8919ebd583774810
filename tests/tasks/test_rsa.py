"""The rsa task against rsatoolbox itself, on seeded synthetic participants and the lab's files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rsatoolbox.inference import eval_fixed
from rsatoolbox.model import ModelFixed
from rsatoolbox.rdm import RDMs
from scipy import stats as scipy_stats
from scipy.spatial.distance import pdist, squareform

from facebench.errors import ConfigError, DataError
from facebench.testing import array_view
from facebench_tasks.rsa import COMPARATORS, RSATask

N_IMAGES = 10
N_SUBJECTS = 5


def synthetic(seed: int = 0, noise: float = 0.3) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Model features (float32, as the store keeps them), image names, and participants' RDMs
    (condensed, ``pdist`` order): noisy copies of the features' cosine RDM."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(N_IMAGES, 24)).astype(np.float32)
    names = [f"face_{i:02d}.png" for i in range(N_IMAGES)]
    truth = pdist(features.astype(np.float64), "cosine")
    subjects = truth + rng.normal(scale=noise * truth.std(), size=(N_SUBJECTS, truth.size))
    return features, names, subjects


def long_frame(names: list[str], subjects: np.ndarray) -> pd.DataFrame:
    first, second = np.triu_indices(len(names), 1)
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "img1": np.asarray(names)[first],
                    "img2": np.asarray(names)[second],
                    "subject": f"p{s}",
                    "distance": subjects[s],
                }
            )
            for s in range(len(subjects))
        ],
        ignore_index=True,
    )


def wide_frame(names: list[str], subjects: np.ndarray) -> pd.DataFrame:
    first, second = np.triu_indices(len(names), 1)
    frame = pd.DataFrame({"img1": np.asarray(names)[first], "img2": np.asarray(names)[second]})
    for s in range(len(subjects)):
        frame[f"p{s}"] = subjects[s]
    return frame


def reference(model_vector: np.ndarray, subjects: np.ndarray, method: str) -> tuple[float, float, float]:
    """rsatoolbox's own evaluation: score (mean over participants) and noise ceiling."""
    data = RDMs(subjects)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = eval_fixed([ModelFixed("m", RDMs(model_vector[None]))], data, method=method)
    lower, upper = result.noise_ceiling
    return float(np.mean(result.evaluations)), float(lower), float(upper)


def score_long(write_pairs, features: np.ndarray, names: list[str], subjects: np.ndarray, comparator: str):
    """The RSA row of ``features`` against participants' ratings in a long pairs file."""
    pairs_file, images = write_pairs(long_frame(names, subjects))
    task = RSATask(
        pairs_file_path=pairs_file,
        images_path=images,
        subject_column="subject",
        comparator=comparator,
        n_bootstrap=0,
    )
    return task.evaluate(array_view(features, names)).performance.iloc[0]


@pytest.mark.parametrize("comparator", COMPARATORS)
def test_score_and_noise_ceiling_equal_rsatoolbox(write_pairs, comparator: str) -> None:
    features, names, subjects = synthetic()
    row = score_long(write_pairs, features, names, subjects, comparator)
    expected = reference(pdist(features.astype(np.float64), "cosine"), subjects, comparator)
    assert row["RSA Score"] == pytest.approx(expected[0], abs=1e-10)
    assert row["Noise Ceiling Lower"] == pytest.approx(expected[1], abs=1e-10)
    assert row["Noise Ceiling Upper"] == pytest.approx(expected[2], abs=1e-10)
    assert row["Comparator"] == comparator and row["Distance Metric"] == "cosine"
    assert list(row.index) == [
        "RSA Score",
        "RSA Score CI Low",
        "RSA Score CI High",
        "Noise Ceiling Lower",
        "Noise Ceiling Upper",
        "Comparator",
        "Distance Metric",
    ]


def test_wide_format_and_shuffled_long_format_give_the_same_result(write_pairs) -> None:
    features, names, subjects = synthetic(seed=1)
    view = array_view(features, names)
    wide_file, images = write_pairs(wide_frame(names, subjects), "wide.csv")
    wide = RSATask(
        pairs_file_path=wide_file,
        images_path=images,
        n_bootstrap=100,
        participant_columns=[f"p{s}" for s in range(N_SUBJECTS)],
    )
    shuffled = long_frame(names, subjects).sample(frac=1.0, random_state=3)
    flip = shuffled.index % 2 == 0  # some pairs written the other way round
    shuffled.loc[flip, ["img1", "img2"]] = shuffled.loc[flip, ["img2", "img1"]].to_numpy()
    long_file, images = write_pairs(shuffled, "long.csv")
    long = RSATask(pairs_file_path=long_file, images_path=images, subject_column="subject")
    table = pd.DataFrame({"image": names})
    table.to_csv(long_file.parent / "table.csv", index=False)
    long_with_table = RSATask(
        pairs_file_path=long_file,
        images_path=images,
        n_bootstrap=100,
        subject_column="subject",
        table_path=long_file.parent / "table.csv",
    )
    a = wide.evaluate(view).performance
    b = long_with_table.evaluate(view).performance
    pd.testing.assert_frame_equal(a, b)
    # without a table the stimuli follow the shuffled file's order: the same score and ceiling
    # (the bootstrap draws other stimuli: the interval is not compared)
    c = long.evaluate(array_view(features[[names.index(n) for n in long.stimuli]], long.stimuli)).performance
    assert long.stimuli != names
    columns = ["RSA Score", "Noise Ceiling Lower", "Noise Ceiling Upper"]
    np.testing.assert_allclose(c[columns].to_numpy(float), a[columns].to_numpy(float), atol=1e-12)


@pytest.mark.parametrize("comparator", ["corr", "cosine", "spearman"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_ceiling_brackets_a_model_equal_to_the_mean_human_rdm(
    write_pairs, comparator: str, seed: int
) -> None:
    _, names, subjects = synthetic(seed=seed, noise=0.8)
    pairs_file, images = write_pairs(long_frame(names, subjects))
    task = RSATask(
        pairs_file_path=pairs_file, images_path=images, subject_column="subject", comparator=comparator
    )
    score, lower, upper = task.score(subjects.mean(axis=0))
    assert lower < score <= upper + 1e-12
    # and a model unrelated to the participants scores far below the lower bound
    unrelated = np.random.default_rng(99).random(subjects.shape[1])
    assert task.score(unrelated)[0] < lower


def test_missing_pairs_are_left_out_of_every_comparison(write_pairs) -> None:
    features, names, subjects = synthetic(seed=4)
    frame = long_frame(names, subjects)
    dropped = frame.index[
        (frame["subject"] == "p1") & (frame["img1"] == names[0]) & (frame["img2"] == names[3])
    ]
    frame = frame.drop(dropped)  # p1 never rated (0, 3)
    frame.loc[
        (frame["subject"] == "p2") & (frame["img1"] == names[2]) & (frame["img2"] == names[5]), "distance"
    ] = None
    pairs_file, images = write_pairs(frame)
    task = RSATask(pairs_file_path=pairs_file, images_path=images, subject_column="subject", n_bootstrap=50)
    result = task.evaluate(array_view(features, names))
    row = result.performance.iloc[0]
    index = squareform(np.arange(1, subjects.shape[1] + 1))  # condensed position + 1
    missing = [index[0, 3] - 1, index[2, 5] - 1]
    kept = np.setdiff1d(np.arange(subjects.shape[1]), missing)
    model = pdist(features.astype(np.float64), "cosine")
    # rsatoolbox on the pairs every participant rated
    assert row["RSA Score"] == pytest.approx(
        reference(model[kept], subjects[:, kept], "spearman")[0], abs=1e-10
    )
    # and independently: scipy's Spearman per participant on those pairs, averaged
    spearman = np.mean([scipy_stats.spearmanr(model[kept], s[kept]).statistic for s in subjects])
    assert row["RSA Score"] == pytest.approx(spearman, abs=1e-10)
    assert np.isfinite([row["Noise Ceiling Lower"], row["RSA Score CI Low"]]).all()
    used = result.distances["in_comparison"].to_numpy()
    assert (~used).sum() == 2 and not used[missing].any()


def test_bootstrap_is_seeded_and_resamples_stimuli_and_participants(write_pairs) -> None:
    features, names, subjects = synthetic(seed=5)
    pairs_file, images = write_pairs(long_frame(names, subjects))
    view = array_view(features, names)

    def interval(**options: object) -> tuple[float, float]:
        task = RSATask(pairs_file_path=pairs_file, images_path=images, n_bootstrap=200, **options)
        row = task.evaluate(view).performance.iloc[0]
        assert row["RSA Score CI Low"] <= row["RSA Score"] <= row["RSA Score CI High"]
        return row["RSA Score CI Low"], row["RSA Score CI High"]

    both = interval(subject_column="subject", seed=7)
    assert interval(subject_column="subject", seed=7) == both
    assert interval(subject_column="subject", seed=8) != both
    # one averaged RDM: stimuli only, and no noise ceiling
    averaged = (
        long_frame(names, subjects).groupby(["img1", "img2"], as_index=False, sort=False)["distance"].mean()
    )
    averaged_file, images = write_pairs(averaged, "averaged.csv")
    task = RSATask(pairs_file_path=averaged_file, images_path=images, n_bootstrap=200)
    row = task.evaluate(view).performance.iloc[0]
    assert np.isnan(row["Noise Ceiling Lower"]) and np.isnan(row["Noise Ceiling Upper"])
    assert row["RSA Score CI Low"] < row["RSA Score"] < row["RSA Score CI High"]


def test_reads_the_lab_files_as_they_are(fixtures: Path, images_for) -> None:
    folder = fixtures / "similarity_perception"
    typical = folder / "international_perception_6faces.csv"
    task = RSATask(pairs_file_path=typical, images_path=images_for(typical), n_bootstrap=0)
    frame = pd.read_csv(typical)
    matrix = squareform(task.human_mean)
    for a, b, value in frame.itertuples(index=False):
        assert matrix[task.stimuli.index(a), task.stimuli.index(b)] == pytest.approx(value)
    assert len(task.stimuli) == 6 and task.mask.all()
    # the Israeli file: a leading unnamed index column and only some pairs of its faces
    israeli = fixtures / "israeli_familiar_distances.csv"
    partial = RSATask(pairs_file_path=israeli, images_path=images_for(israeli), n_bootstrap=0)
    assert partial.mask.sum() == len(pd.read_csv(israeli)) < partial.mask.size


@pytest.mark.parametrize(
    ("frame", "options", "error", "match"),
    [
        (
            pd.DataFrame(
                {
                    "img1": ["a.png", "a.png", "b.png"],
                    "img2": ["b.png", "c.png", "a.png"],
                    "distance": [1, 2, 3],
                }
            ),
            {},
            DataError,
            "twice",
        ),
        (pd.DataFrame({"img1": ["a.png"], "img2": ["a.png"], "distance": [1]}), {}, DataError, "with itself"),
        (pd.DataFrame({"img1": ["a.png"], "img2": ["b.png"], "distance": ["high"]}), {}, DataError, "'high'"),
        (
            pd.DataFrame({"img1": ["a.png"], "img2": ["b.png"], "distance": [1]}),
            {"comparator": "kendall"},
            ConfigError,
            "tau-a",
        ),
        (
            pd.DataFrame({"img1": ["a.png"], "img2": ["b.png"], "rating": [1]}),
            {},
            DataError,
            "distance_column",
        ),
    ],
)
def test_bad_input_says_what_and_where(write_pairs, frame, options, error, match) -> None:
    pairs_file, images = write_pairs(frame)
    with pytest.raises(error, match=match):
        RSATask(pairs_file_path=pairs_file, images_path=images, **options)


def test_pairs_outside_the_images_table_are_refused(write_pairs, tmp_path: Path) -> None:
    _, names, subjects = synthetic()
    pairs_file, images = write_pairs(long_frame(names, subjects))
    table = tmp_path / "table.csv"
    pd.DataFrame({"image": names[:-1]}).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"not in the images table.*face_09"):
        RSATask(pairs_file_path=pairs_file, images_path=images, subject_column="subject", table_path=table)


def pooled(rdms: np.ndarray, comparator: str) -> np.ndarray:
    """The RDM the noise ceiling compares each participant with, as the docs state it."""
    if comparator == "spearman":  # the mean of the participants' ranks
        return np.mean([scipy_stats.rankdata(r) for r in rdms], axis=0)
    if comparator == "corr":  # the mean of their z-scores
        return np.mean([(r - r.mean()) / r.std() for r in rdms], axis=0)
    return np.mean([r / np.sqrt(np.mean(r**2)) for r in rdms], axis=0)  # cosine: of r / rms(r)


def compare(a: np.ndarray, b: np.ndarray, comparator: str) -> float:
    if comparator == "spearman":
        return float(scipy_stats.spearmanr(a, b).statistic)
    if comparator == "corr":
        return float(scipy_stats.pearsonr(a, b).statistic)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.parametrize("comparator", ["spearman", "corr", "cosine"])
def test_noise_ceiling_pools_as_documented_not_a_plain_mean(write_pairs, comparator: str) -> None:
    features, names, subjects = synthetic(seed=3, noise=0.8)
    subjects = subjects * np.arange(1, N_SUBJECTS + 1)[:, None] ** 2  # participants use different scales
    row = score_long(write_pairs, features, names, subjects, comparator)
    others = [np.delete(subjects, s, axis=0) for s in range(N_SUBJECTS)]
    lower = np.mean([compare(pooled(o, comparator), subjects[s], comparator) for s, o in enumerate(others)])
    upper = np.mean([compare(pooled(subjects, comparator), s, comparator) for s in subjects])
    assert row["Noise Ceiling Lower"] == pytest.approx(lower, abs=1e-10)
    assert row["Noise Ceiling Upper"] == pytest.approx(upper, abs=1e-10)
    plain = np.mean([compare(o.mean(axis=0), subjects[s], comparator) for s, o in enumerate(others)])
    assert abs(plain - lower) > 1e-4  # a plain mean of the others would be another number
    documented = " ".join((Path(__file__).parents[2] / "facebench-tasks" / "README.md").read_text().split())
    assert {"spearman": "averaged ranks", "corr": "averaged z-scores", "cosine": "root mean square"}[
        comparator
    ] in documented
