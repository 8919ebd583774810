"""Verification: are the two faces of a pair the same person?"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from sklearn.metrics import roc_auc_score

from facebench.errors import ConfigError, DataError
from facebench.pairs import binary_labels
from facebench.task import BaseTask
from facebench_tasks import stats


def tar_column(far: float) -> str:
    """``"TAR at FAR 0.001"``."""
    return f"TAR at FAR {far:g}"


class AccuracyTask(BaseTask):
    """Verification metrics from pair distances and same/different labels.

    Scores are similarities: ``1 - distance`` for bounded metrics, ``-distance`` otherwise.
    A pair is called "same" when its score is ``>=`` the threshold, as in the ROC curve.

    Result columns:
    ``Accuracy``, ``Optimal Threshold`` (Youden's J on the ROC, in similarity units, and the
    accuracy on these pairs at it), ``AUC``, ``Cross-Validated Accuracy`` and
    ``Cross-Validated Accuracy Std`` (mean and population std over ``n_folds`` contiguous
    folds, each scored at the best-accuracy threshold of the other folds), ``EER``,
    ``TAR at FAR 0.001`` and ``TAR at FAR 0.01`` (NaN with fewer than 1 / FAR different pairs),
    ``Distance Metric``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Accuracy", "AUC", "Cross-Validated Accuracy")

    def __init__(
        self,
        name: str | None = None,
        *,
        label_column: str = "truth",
        n_folds: int = 10,
        far_levels: Sequence[float] = (1e-3, 1e-2),
        **common: Any,
    ) -> None:
        if int(n_folds) < 2:
            raise ConfigError(f"n_folds must be at least 2, not {n_folds!r}")
        if any(not 0 < far < 1 for far in far_levels):
            raise ConfigError(f"far_levels must lie between 0 and 1, not {list(far_levels)!r}")
        self.label_column = label_column
        self.n_folds = int(n_folds)
        self.far_levels = tuple(float(f) for f in far_levels)
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        return (*self.required_columns, self.label_column)

    def column_options(self) -> dict[str, str]:
        return {self.label_column: "label_column"}

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        labels = binary_labels(frame, self.label_column, self.pairs_file_path)
        if labels.all() or not labels.any():
            kind = "same" if labels.all() else "different"
            raise DataError(
                f"{self.pairs_file_path}: every pair in column {self.label_column!r} is labelled "
                f"{kind}; verification needs both same and different pairs"
            )
        frame = frame.copy()
        frame[self.label_column] = labels.astype(int)
        return frame

    def error_columns(self, column: str) -> tuple[str, str] | None:
        if column == "Cross-Validated Accuracy":
            return ("Cross-Validated Accuracy - Std", "Cross-Validated Accuracy + Std")
        return None

    def plot(self, output_dir: Path, performances: pd.DataFrame, **kwargs: Any) -> list[Path]:
        """Bars of Accuracy, AUC and cross-validated accuracy (error bars: ± one fold std)."""
        frame = performances.copy()
        if {"Cross-Validated Accuracy", "Cross-Validated Accuracy Std"} <= set(frame.columns):
            low, high = self.error_columns("Cross-Validated Accuracy") or ("", "")
            frame[low] = frame["Cross-Validated Accuracy"] - frame["Cross-Validated Accuracy Std"]
            frame[high] = frame["Cross-Validated Accuracy"] + frame["Cross-Validated Accuracy Std"]
        return super().plot(output_dir, frame, **kwargs)

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        source = f"task {self.name!r} distances"
        labels = binary_labels(pairs_distances_df, self.label_column, source)
        scores = stats.similarity_scores(self.pair_distances(pairs_distances_df), self.metric.bounded)
        if labels.all() or not labels.any():
            raise DataError(f"{source}: verification needs both same and different pairs")
        threshold = stats.youden_threshold(labels, scores)
        if labels.size >= self.n_folds:
            fold_accuracies, _ = stats.cross_validated_accuracy(labels, scores, self.n_folds)
            cv_mean, cv_std = float(fold_accuracies.mean()), float(fold_accuracies.std())
        else:
            cv_mean = cv_std = math.nan
        row = {
            "Accuracy": stats.accuracy_at_threshold(labels, scores, threshold),
            "Optimal Threshold": threshold,
            "AUC": float(roc_auc_score(labels, scores)),
            "Cross-Validated Accuracy": cv_mean,
            "Cross-Validated Accuracy Std": cv_std,
            "EER": stats.equal_error_rate(labels, scores),
        }
        for far in self.far_levels:
            row[tar_column(far)] = stats.tar_at_far(labels, scores, far)
        return self.result_row(row)
