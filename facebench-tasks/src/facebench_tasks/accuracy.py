"""Verification: are the two faces of a pair the same person?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from facebench.errors import ConfigError, DataError
from facebench.pairs import binary_labels, check_no_missing
from facebench.task import BaseTask
from facebench_tasks import stats


def tar_column(far: float) -> str:
    """``"TAR at FAR 0.001"``."""
    return f"TAR at FAR {far:g}"


class AccuracyTask(BaseTask):
    """Verification metrics from pair distances and same/different labels.

    Scores are similarities: ``1 - distance`` for bounded metrics, ``-distance`` otherwise.
    A pair is called "same" when its score is ``>=`` the threshold, as in the ROC curve.

    Result columns, headline first:
    ``Cross-Validated Accuracy`` and ``Cross-Validated Accuracy Std`` (mean and population std
    over ``n_folds`` contiguous folds, or the folds named in ``fold_column`` when given, each
    scored at the best-accuracy threshold of the other folds: held-out accuracy), ``AUC``,
    ``EER``, ``TAR at FAR 0.001`` and ``TAR at FAR 0.01`` (NaN with fewer than 1 / FAR
    different pairs), ``Optimal Threshold`` (Youden's J on the ROC, in similarity units) and
    ``In-Sample Accuracy`` (the accuracy at that threshold on the same pairs it was chosen on,
    so it flatters the model), ``Distance Metric``.

    Every contiguous fold must hold a same and a different pair: a file with fewer than
    ``n_folds`` pairs of either label is refused when the task is created (lower ``n_folds``).

    Human reference: a human percentiles column ``"<task>: Accuracy"`` (people answer without a
    fitted threshold) is drawn against ``Cross-Validated Accuracy``, the model's held-out
    accuracy; ``AUC`` against ``"<task>: AUC"``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Cross-Validated Accuracy", "AUC")
    human_columns: ClassVar[dict[str, str]] = {"Cross-Validated Accuracy": "Accuracy"}

    def __init__(
        self,
        name: str | None = None,
        *,
        label_column: str = "truth",
        n_folds: int = 10,
        fold_column: str | None = None,
        far_levels: Sequence[float] = (1e-3, 1e-2),
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``label_column``: the same (1/true) / different (0/false) column of the pairs file.
        - ``n_folds``: contiguous folds for the cross-validated accuracy (when no fold_column).
        - ``fold_column``: a column naming each pair's fold (LFW's folds), instead of n_folds.
        - ``far_levels``: false-acceptance rates at which the true-acceptance rate is reported.
        """
        if int(n_folds) < 2:
            raise ConfigError(f"n_folds must be at least 2, not {n_folds!r}")
        if any(not 0 < far < 1 for far in far_levels):
            raise ConfigError(f"far_levels must lie between 0 and 1, not {list(far_levels)!r}")
        self.label_column = label_column
        self.n_folds = int(n_folds)
        self.fold_column = fold_column
        self.far_levels = tuple(float(f) for f in far_levels)
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        folds = (self.fold_column,) if self.fold_column is not None else ()
        return (*self.required_columns, self.label_column, *folds)

    def column_options(self) -> dict[str, str]:
        options = {self.label_column: "label_column"}
        if self.fold_column is not None:
            options[self.fold_column] = "fold_column"
        return options

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        labels = binary_labels(frame, self.label_column, self.pairs_file_path)
        if labels.all() or not labels.any():
            kind = "same" if labels.all() else "different"
            raise DataError(
                f"{self.pairs_file_path}: every pair in column {self.label_column!r} is labelled "
                f"{kind}; verification needs both same and different pairs"
            )
        if self.fold_column is not None:
            check_no_missing(frame, self.fold_column, self.pairs_file_path)
            if frame[self.fold_column].nunique() < 2:
                raise DataError(
                    f"{self.pairs_file_path}: column {self.fold_column!r} names a single fold; "
                    f"cross-validation needs at least two"
                )
        else:
            self._check_fold_sizes(labels, self.pairs_file_path)
        frame = frame.copy()
        frame[self.label_column] = labels.astype(int)
        return frame

    def error_columns(self, column: str) -> tuple[str, str] | None:
        if column == "Cross-Validated Accuracy":
            return ("Cross-Validated Accuracy - Std", "Cross-Validated Accuracy + Std")
        return None

    def plot(self, output_dir: Path, performances: pd.DataFrame, **kwargs: Any) -> list[Path]:
        """Bars of cross-validated accuracy (error bars: ± one fold std) and AUC."""
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
        if self.fold_column is not None:
            codes = pd.factorize(pairs_distances_df[self.fold_column])[0]
            folds = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
            fold_accuracies, _ = stats.cross_validated_accuracy(labels, scores, folds=folds)
            cv_mean, cv_std = float(fold_accuracies.mean()), float(fold_accuracies.std())
        else:
            self._check_fold_sizes(labels, source)
            fold_accuracies, _ = stats.cross_validated_accuracy(labels, scores, self.n_folds)
            cv_mean, cv_std = float(fold_accuracies.mean()), float(fold_accuracies.std())
        row = {
            "Cross-Validated Accuracy": cv_mean,
            "Cross-Validated Accuracy Std": cv_std,
            "AUC": float(roc_auc_score(labels, scores)),
            "EER": stats.equal_error_rate(labels, scores),
        }
        for far in self.far_levels:
            row[tar_column(far)] = stats.tar_at_far(labels, scores, far)
        row["Optimal Threshold"] = threshold
        row["In-Sample Accuracy"] = stats.accuracy_at_threshold(labels, scores, threshold)
        return self.result_row(row)

    def _check_fold_sizes(self, labels: np.ndarray, source: object) -> None:
        """Every contiguous fold needs a same and a different pair to be scored."""
        counts = {"same": int(labels.sum()), "different": int((~labels.astype(bool)).sum())}
        short = {kind: n for kind, n in counts.items() if n < self.n_folds}
        if short:
            found = " and ".join(f"{n} {kind}" for kind, n in short.items())
            fewest = min(counts.values())
            advice = (
                f"set n_folds to at most {fewest}"
                if fewest >= 2
                else "add pairs: cross-validation needs at least 2 same and 2 different pairs"
            )
            raise DataError(
                f"{source}: n_folds={self.n_folds} cross-validation needs at least {self.n_folds} same "
                f"and {self.n_folds} different pairs (one of each per fold), but there are only {found} "
                f"pairs; {advice}"
            )
