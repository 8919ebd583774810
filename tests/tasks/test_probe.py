"""The ``probe`` task: cross-validated linear decoding from embeddings, checked against sklearn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from facebench.errors import DataError
from facebench_tasks.probe import ProbeTask

MakeProbe = Callable[..., ProbeTask]


class ChunkedView:
    """What a task's ``evaluate`` reads: rows of an in-memory matrix, a few at a time."""

    def __init__(self, matrix: np.ndarray, chunk_rows: int = 7) -> None:
        self.matrix, self.chunk_rows, self.dim = matrix.astype(np.float32), chunk_rows, matrix.shape[1]
        self.reads = 0

    def __len__(self) -> int:
        return len(self.matrix)

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.matrix), self.chunk_rows):
            rows = np.arange(start, min(start + self.chunk_rows, len(self.matrix)))
            self.reads += 1
            yield rows, self.matrix[rows]


@pytest.fixture
def make_probe(tmp_path: Path) -> MakeProbe:
    """A probe over an images table (placeholder image files: tasks only check they exist)."""

    def make(table: pd.DataFrame, **options: object) -> ProbeTask:
        images = tmp_path / "images"
        images.mkdir(exist_ok=True)
        for name in table["image"]:
            (images / name).write_bytes(b"")
        table_file = tmp_path / "images.csv"
        table.to_csv(table_file, index=False)
        return ProbeTask(table_path=table_file, images_path=images, **options)

    return make


def people(n_identities: int, per_identity: int, seed: int = 0) -> pd.DataFrame:
    """A table of ``n_identities`` people, each with a random gender, ``per_identity`` images."""
    rng = np.random.default_rng(seed)
    genders = rng.permutation(np.arange(n_identities) % 2)
    rows = [
        (f"p{p:02d}_{i}.png", f"p{p:02d}", "female" if genders[p] else "male")
        for p in range(n_identities)
        for i in range(per_identity)
    ]
    return pd.DataFrame(rows, columns=["image", "identity", "gender"])


def test_metrics_equal_sklearn_cross_validation_on_the_same_folds(make_probe: MakeProbe) -> None:
    table = people(12, 6)
    rng = np.random.default_rng(1)
    labels = (table["gender"] == "female").to_numpy()
    features = rng.normal(size=(len(table), 40)) + 0.6 * labels[:, None] * rng.normal(size=40)
    for pca in (None, 8):
        probe = make_probe(table, label_column="gender", C=0.5, pca_components=pca, seed=3)
        row = probe.score(features)
        steps = [
            StandardScaler(),
            *([PCA(pca, random_state=3)] if pca else []),
            LogisticRegression(C=0.5, max_iter=2000),
        ]
        folds = probe.folds()
        expected = cross_val_score(make_pipeline(*steps), features, table["gender"], cv=folds)
        assert row["Accuracy"] == pytest.approx(expected.mean(), abs=1e-12)
        assert row["Accuracy Std"] == pytest.approx(expected.std(), abs=1e-12)
        others = cross_validate(
            make_pipeline(*steps),
            features,
            table["gender"],
            cv=folds,
            scoring=["balanced_accuracy", "f1_macro", "precision_macro", "recall_macro"],
        )
        assert row["Balanced Accuracy"] == pytest.approx(others["test_balanced_accuracy"].mean(), abs=1e-12)
        assert row["Macro F1"] == pytest.approx(others["test_f1_macro"].mean(), abs=1e-12)
        assert row["Macro Precision"] == pytest.approx(others["test_precision_macro"].mean(), abs=1e-12)
        assert row["Macro Recall"] == pytest.approx(others["test_recall_macro"].mean(), abs=1e-12)
        assert row["Accuracy"] > 0.8
    assert row["Chance Balanced Accuracy"] == 0.5
    assert np.isnan(row["Top-5 Accuracy"]), "two classes: no top-5"


def test_a_random_label_comes_out_at_chance(make_probe: MakeProbe) -> None:
    """Wide random features, scaling and PCA fitted on all the data would not leak a label
    (they never see it); the nested C search, fitted inside each training fold, does not either."""
    rng = np.random.default_rng(5)
    n = 160
    table = pd.DataFrame(
        {"image": [f"{i}.png" for i in range(n)], "label": rng.permutation(np.arange(n) % 2)}
    )
    features = rng.normal(size=(n, 400))
    for options in ({"C": "cv"}, {"C": 1.0, "pca_components": 20}):
        row = make_probe(table, label_column="label", **options).score(features)
        assert abs(row["Accuracy"] - 0.5) < 0.1, options
        assert abs(row["Balanced Accuracy"] - 0.5) < 0.1, options
        assert row["Chance Accuracy"] == pytest.approx(0.5, abs=0.05)


def test_identity_grouped_folds_never_share_a_person(make_probe: MakeProbe) -> None:
    """Features that only tell people apart: grouped by identity, gender is at chance;
    without grouping the probe 'decodes gender' by recognising the people it trained on."""
    table = people(40, 4, seed=2)
    rng = np.random.default_rng(3)
    centroids = rng.normal(size=(40, 60))
    codes = table["identity"].str[1:].astype(int).to_numpy()
    features = centroids[codes] + 0.05 * rng.normal(size=(len(table), 60))
    grouped = make_probe(table, label_column="gender", identity_column="identity", C=1.0)
    for train, test in grouped.folds():
        assert not set(table["identity"][train]) & set(table["identity"][test])
    grouped_row = grouped.score(features)
    assert grouped_row["Folds"] == "5 folds over identities (identity)"
    leaky = make_probe(table, label_column="gender", C=1.0).score(features)
    assert leaky["Accuracy"] > 0.95
    assert grouped_row["Accuracy"] < 0.75


def test_identity_labels_give_top_k(make_probe: MakeProbe) -> None:
    table = people(8, 5)
    rng = np.random.default_rng(4)
    codes = table["identity"].str[1:].astype(int).to_numpy()
    features = rng.normal(size=(8, 20))[codes] + 0.8 * rng.normal(size=(len(table), 20))
    probe = make_probe(table, label_column="identity", identity_column="identity", C=1.0)
    assert not probe.grouped, "the label is identity itself: folds are stratified over images"
    row = probe.score(features)
    assert row["Top-1 Accuracy"] == pytest.approx(row["Accuracy"])
    assert row["Top-5 Accuracy"] >= row["Top-1 Accuracy"]
    assert row["Chance Top-5 Accuracy"] == 5 / 8 and row["Classes"] == 8


def test_evaluate_reads_the_view_in_chunks(make_probe: MakeProbe) -> None:
    table = people(10, 5)
    features = np.random.default_rng(0).normal(size=(len(table), 12))
    probe = make_probe(table, label_column="gender", C=1.0)
    view = ChunkedView(features)
    result = probe.evaluate(view)
    assert view.reads == 8
    expected = probe.score(features.astype(np.float32))
    assert result.performance["Accuracy"].iloc[0] == expected["Accuracy"]
    assert result.distances is None


def test_too_few_images_or_identities_per_label_is_refused(make_probe: MakeProbe) -> None:
    table = people(6, 3)
    with pytest.raises(DataError, match=r"at least 5 identities \('identity'\) per label"):
        make_probe(table, label_column="gender", identity_column="identity")
    with pytest.raises(DataError, match="a probe needs at least two labels"):
        make_probe(table.assign(gender="male"), label_column="gender")
    with pytest.raises(DataError, match="no column 'sex'"):
        make_probe(table, label_column="sex")
