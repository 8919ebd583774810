"""Linear probes: cross-validated decoding of a per-image label (gender, identity, expression,
condition ...) from one model-layer's embeddings."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.pairs import text_column
from facebench.task import BaseTask, TaskResult

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from facebench.layer_view import LayerView
    from facebench.plots import HumanBand

METRICS = {
    "Accuracy": "accuracy",
    "Balanced Accuracy": "balanced_accuracy",
    "Macro Precision": "precision_macro",
    "Macro Recall": "recall_macro",
    "Macro F1": "f1_macro",
    "Top-1 Accuracy": "top1",
    "Top-5 Accuracy": "top5",
}
CHANCE_COLUMNS = {
    "Accuracy": "Chance Accuracy",
    "Balanced Accuracy": "Chance Balanced Accuracy",
    "Top-5 Accuracy": "Chance Top-5 Accuracy",
}
C_GRID = tuple(float(c) for c in np.logspace(-4, 4, 9))
INNER_FOLDS = 3
TOP_K_MIN_CLASSES = 6


def read_matrix(view: LayerView) -> np.ndarray:
    """The view's ``(N, D)`` float32 embeddings, filled chunk by chunk (the probe's classifier
    needs them all at once: N x D x 4 bytes)."""
    matrix = np.empty((len(view), view.dim), dtype=np.float32)
    for rows, block in view.iter_chunks():
        matrix[rows] = block
    return matrix


class ProbeTask(BaseTask):
    """Cross-validated linear decoding of ``label_column`` of an images table, per model-layer.

    The classifier is a scikit-learn pipeline fitted inside each training fold only:
    ``StandardScaler`` → ``PCA(pca_components)`` (optional, for wide layers) →
    ``LogisticRegression``. Its inverse regularisation ``C`` is ``C="cv"`` (default): chosen
    by nested cross-validation within each training fold (``LogisticRegressionCV`` over
    ``1e-4 .. 1e4``, 3 inner folds of the same kind as the outer ones, accuracy); or a fixed
    number (``C=1.0`` is scikit-learn's default).

    Folds (``n_folds``, shuffled under ``seed``) are ``StratifiedKFold`` over images, or, when
    ``identity_column`` is given and differs from ``label_column``, ``StratifiedGroupKFold``
    with identities as groups: no person is in both training and test, so the probe cannot
    succeed by recognising people. Every label needs at least ``n_folds`` images (identities,
    when grouped).

    Result columns: ``Accuracy``, ``Balanced Accuracy``, ``Macro Precision``, ``Macro Recall``,
    ``Macro F1`` (``zero_division=0``), and with more than five classes ``Top-1 Accuracy`` and
    ``Top-5 Accuracy`` (a test image whose class the training fold lacks counts as a miss):
    each the mean over held-out folds with ``<metric> Std`` (population std over folds).
    Chance: ``Chance Accuracy`` (the training fold's most frequent class, as
    ``DummyClassifier``, on the same folds), ``Chance Balanced Accuracy`` (1 / classes),
    ``Chance Top-5 Accuracy`` (5 / classes); ``Classes``, ``Images``, ``Folds`` (what was
    resampled) and ``Distance Metric`` (unused by the probe).

    The task holds the layer's N x D float32 matrix in memory (read from the store in chunks):
    10,000 images x 25,088 dimensions is 1 GB; choose a reduced layer for larger sets.
    """

    pairs_file: ClassVar[str] = "unused"
    images_table: ClassVar[str] = "required"
    plot_columns: ClassVar[tuple[str, ...]] = ("Accuracy", "Balanced Accuracy", "Macro F1", "Top-5 Accuracy")

    def __init__(
        self,
        name: str | None = None,
        *,
        label_column: str = "label",
        identity_column: str | None = None,
        n_folds: int = 5,
        pca_components: int | None = None,
        C: float | Literal["cv"] = "cv",
        seed: int = 0,
        max_iter: int = 2000,
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``label_column``: the images-table column to decode.
        - ``identity_column``: keeps each identity in one fold (grouped folds).
        - ``n_folds``: stratified cross-validation folds.
        - ``pca_components``: PCA dimensions before the classifier (fitted in each training fold).
        - ``C``: the logistic regression's inverse regularisation, or cv to choose it by nested CV.
        - ``seed``: seeds the fold shuffle.
        - ``max_iter``: the logistic regression's iteration limit.
        """
        if int(n_folds) < 2:
            raise ConfigError(f"n_folds must be at least 2, not {n_folds!r}")
        if pca_components is not None and int(pca_components) < 1:
            raise ConfigError(
                f"pca_components must be a positive number of components, not {pca_components!r}"
            )
        if C != "cv":
            try:
                C = float(C)
            except (TypeError, ValueError):
                C = math.nan
            if not C > 0:
                raise ConfigError(f"C must be 'cv' (nested cross-validation) or a positive number, not {C!r}")
        self.label_column = label_column
        self.identity_column = identity_column
        self.n_folds = int(n_folds)
        self.pca_components = None if pca_components is None else int(pca_components)
        self.C = C
        self.seed = int(seed)
        self.max_iter = int(max_iter)
        super().__init__(name, **common)

    # --- the images table ----------------------------------------------------------------
    @property
    def grouped(self) -> bool:
        """Whether folds keep each identity on one side (an identity column, not the label)."""
        return self.identity_column is not None and self.identity_column != self.label_column

    def table_columns(self) -> tuple[str, ...]:
        extra = (self.identity_column,) if self.grouped else ()
        return (*self.required_table_columns, self.label_column, *extra)

    def column_options(self) -> dict[str, str]:
        options = {self.label_column: "label_column"}
        if self.identity_column is not None:
            options[self.identity_column] = "identity_column"
        return options

    def validate_table(self, frame: pd.DataFrame) -> pd.DataFrame:
        labels = text_column(frame, self.label_column, self.table_path)
        counts = labels.value_counts()
        if len(counts) < 2:
            raise DataError(
                f"{self.table_path}: column {self.label_column!r} has a single value "
                f"({counts.index[0]!r}); a probe needs at least two labels"
            )
        unit, per_label = "images", counts
        if self.grouped:
            groups = text_column(frame, self.identity_column, self.table_path)
            unit = f"identities ({self.identity_column!r})"
            per_label = pd.DataFrame({"label": labels, "group": groups}).groupby("label")["group"].nunique()
        short = per_label[per_label < self.n_folds]
        if len(short):
            shown = ", ".join(f"{label!r} ({count})" for label, count in short.head(5).items())
            raise DataError(
                f"{self.table_path}: the probe's {self.n_folds} stratified folds need at least "
                f"{self.n_folds} {unit} per label of {self.label_column!r}; these have fewer: {shown}"
                f"{' and more' if len(short) > 5 else ''}. Lower n_folds, or leave those rows out"
            )
        frame = frame.copy()
        frame[self.label_column] = labels
        return frame

    # --- scoring -------------------------------------------------------------------------
    def evaluate(self, view: LayerView) -> TaskResult:
        """Cross-validated probe metrics on the view's embeddings (rows in table order)."""
        return TaskResult(self.result_row(self.score(read_matrix(view))))

    def folds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The outer ``(train, test)`` index arrays over the table's rows."""
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

        labels = self.table_df[self.label_column].to_numpy()
        rows = np.zeros(len(labels))
        if self.grouped:
            groups = self.table_df[self.identity_column].astype(str).to_numpy()
            splitter = StratifiedGroupKFold(self.n_folds, shuffle=True, random_state=self.seed)
            return list(splitter.split(rows, labels, groups))
        return list(StratifiedKFold(self.n_folds, shuffle=True, random_state=self.seed).split(rows, labels))

    def pipeline(self, train: np.ndarray | None = None) -> Pipeline:
        """The classifier for one training fold (``train``: its rows, for the nested C search)."""
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        steps: list[Any] = [StandardScaler()]
        if self.pca_components is not None:
            steps.append(PCA(self.pca_components, random_state=self.seed))
        if self.C == "cv":
            labels = self.table_df[self.label_column].to_numpy()[train]
            rows = np.zeros(len(labels))
            if self.grouped:
                groups = self.table_df[self.identity_column].astype(str).to_numpy()[train]
                inner = StratifiedGroupKFold(INNER_FOLDS, shuffle=True, random_state=self.seed)
                splits = list(inner.split(rows, labels, groups))
            else:
                inner = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=self.seed)
                splits = list(inner.split(rows, labels))
            steps.append(
                LogisticRegressionCV(Cs=list(C_GRID), cv=splits, scoring="accuracy", max_iter=self.max_iter)
            )
        else:
            steps.append(LogisticRegression(C=self.C, max_iter=self.max_iter))
        return make_pipeline(*steps)

    def score(self, features: np.ndarray) -> dict[str, Any]:
        """The probe's metrics for ``features`` (one row per table row)."""
        from sklearn import metrics
        from sklearn.dummy import DummyClassifier

        features = np.asarray(features)
        if features.shape[0] != len(self.table_df):
            raise DataError(
                f"task {self.name!r}: {features.shape[0]} embeddings for {len(self.table_df)} images"
            )
        if not np.isfinite(features).all():
            raise DataError(f"task {self.name!r}: the embeddings hold NaN or inf; the model produced them")
        if self.pca_components is not None:
            smallest_train = min(len(train) for train, _ in self.folds())
            if self.pca_components > min(smallest_train, features.shape[1]):
                raise ConfigError(
                    f"pca_components={self.pca_components} exceeds what a training fold allows "
                    f"(min of {smallest_train} images and {features.shape[1]} dimensions)"
                )
        labels = self.table_df[self.label_column].to_numpy()
        classes = np.unique(labels)
        with_top_k = len(classes) >= TOP_K_MIN_CLASSES
        per_fold: dict[str, list[float]] = {column: [] for column in METRICS}
        chance: list[float] = []
        for train, test in self.folds():
            model = self.pipeline(train)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*least populated class.*")
                # sklearn 1.8+'s notices about LogisticRegressionCV's future defaults
                warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn.linear_model")
                model.fit(features[train], labels[train])
            predicted = model.predict(features[test])
            truth = labels[test]
            per_fold["Accuracy"].append(metrics.accuracy_score(truth, predicted))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
                per_fold["Balanced Accuracy"].append(metrics.balanced_accuracy_score(truth, predicted))
            precision, recall, f1, _ = metrics.precision_recall_fscore_support(
                truth, predicted, labels=classes, average="macro", zero_division=0
            )
            per_fold["Macro Precision"].append(precision)
            per_fold["Macro Recall"].append(recall)
            per_fold["Macro F1"].append(f1)
            if with_top_k:
                scores = np.zeros((len(test), len(classes)))
                scores[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(features[test])
                for k, column in ((1, "Top-1 Accuracy"), (5, "Top-5 Accuracy")):
                    per_fold[column].append(metrics.top_k_accuracy_score(truth, scores, k=k, labels=classes))
            dummy = DummyClassifier(strategy="most_frequent").fit(features[train], labels[train])
            chance.append(metrics.accuracy_score(truth, dummy.predict(features[test])))
        row: dict[str, Any] = {}
        for column, values in per_fold.items():
            row[column] = float(np.mean(values)) if values else math.nan
            row[f"{column} Std"] = float(np.std(values)) if values else math.nan
        row["Chance Accuracy"] = float(np.mean(chance))
        row["Chance Balanced Accuracy"] = 1.0 / len(classes)
        row["Chance Top-5 Accuracy"] = min(5, len(classes)) / len(classes) if with_top_k else math.nan
        row["Classes"] = len(classes)
        row["Images"] = len(labels)
        row["Folds"] = (
            f"{self.n_folds} folds over identities ({self.identity_column})"
            if self.grouped
            else f"{self.n_folds} folds over images"
        )
        return row

    # --- plots ---------------------------------------------------------------------------
    def error_columns(self, column: str) -> tuple[str, str] | None:
        return (f"{column} - Std", f"{column} + Std") if column in METRICS else None

    def plot(self, output_dir: Path, performances: pd.DataFrame, **kwargs: Any) -> list[Path]:
        """Bars of :attr:`plot_columns`, with error bars of ± one fold std."""
        frame = performances.copy()
        for column in METRICS:
            if {column, f"{column} Std"} <= set(frame.columns):
                low, high = self.error_columns(column) or ("", "")
                frame[low] = frame[column] - frame[f"{column} Std"]
                frame[high] = frame[column] + frame[f"{column} Std"]
        return super().plot(output_dir, frame, **kwargs)

    def reference_band(self, column: str, performances: pd.DataFrame) -> HumanBand | None:
        """The chance level of ``column`` (a dotted line on its by-layer curves), if it has one."""
        from facebench.plots import HumanBand

        chance_column = CHANCE_COLUMNS.get(column)
        if chance_column not in performances.columns or performances[chance_column].isna().all():
            return None
        chance = float(performances[chance_column].mean())
        return HumanBand(low=chance, median=None, high=chance, label="Chance")
