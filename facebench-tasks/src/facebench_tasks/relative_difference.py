"""Relative difference of mean distances between two groups, e.g. the Thatcher effect."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.pairs import text_column
from facebench.task import BaseTask
from facebench_tasks import stats


class RelativeDifferenceTask(BaseTask):
    """``(m1 - m2) / (m1 + m2)``, where ``m1`` and ``m2`` are the mean distances of the pairs in
    ``groups[0]`` and ``groups[1]`` of ``group_column``.

    The order of ``groups`` fixes the sign, whatever the order of the rows; rows of other groups
    are ignored. With ``identity_column``, distances are first averaged per identity within each
    group and ``m`` is the mean over identities (as Thatcher-effect studies do).

    The confidence interval is a seeded percentile bootstrap that resamples, within each group,
    the units the means are taken over: identities with ``identity_column``, pairs otherwise.

    Result columns: ``Relative Difference``, ``Relative Difference CI Low``,
    ``Relative Difference CI High``, ``Group "<group 1>" Mean``, ``Group "<group 2>" Mean`` (the
    names the human percentiles file uses), ``Distance Metric``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Relative Difference",)

    def __init__(
        self,
        name: str | None = None,
        *,
        group_column: str = "condition",
        groups: Sequence[str] | None = None,
        identity_column: str | None = None,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        **common: Any,
    ) -> None:
        if isinstance(groups, str) or groups is None or len(groups) != 2 or groups[0] == groups[1]:
            raise ConfigError(
                f"relative-difference needs groups=(first, second): the two distinct values of "
                f"{group_column!r} to compare, in order (the result is (m1 - m2) / (m1 + m2)); "
                f"got {groups!r}"
            )
        stats.check_confidence(confidence)
        self.group_column = group_column
        self.groups = (str(groups[0]).strip(), str(groups[1]).strip())
        self.identity_column = identity_column
        self.n_bootstrap = int(n_bootstrap)
        self.confidence = float(confidence)
        self.seed = int(seed)
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        extra = (self.identity_column,) if self.identity_column else ()
        return (*self.required_columns, self.group_column, *extra)

    def column_options(self) -> dict[str, str]:
        options = {self.group_column: "group_column"}
        if self.identity_column:
            options[self.identity_column] = "identity_column"
        return options

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[self.group_column] = text_column(frame, self.group_column, self.pairs_file_path)
        present = list(pd.unique(frame[self.group_column]))
        absent = [g for g in self.groups if g not in present]
        if absent:
            raise DataError(
                f"{self.pairs_file_path}: group {', '.join(map(repr, absent))} does not occur in column "
                f"{self.group_column!r}; its values are: {', '.join(map(repr, present))}. "
                f"Set groups=(first, second) to two of them."
            )
        if self.identity_column:
            frame[self.identity_column] = text_column(frame, self.identity_column, self.pairs_file_path)
        return frame

    def group_units(self, pairs_distances_df: pd.DataFrame) -> list[np.ndarray]:
        """Per group, the values its mean is taken over: per-identity means, or pair distances."""
        distances = self.pair_distances(pairs_distances_df)
        source = f"task {self.name!r} distances"
        group = text_column(pairs_distances_df, self.group_column, source).to_numpy()
        units = []
        for name in self.groups:
            in_group = group == name
            if not in_group.any():
                raise DataError(f"{source}: no pairs in group {name!r} of column {self.group_column!r}")
            values = pd.Series(distances[in_group])
            if self.identity_column:
                identity = text_column(pairs_distances_df, self.identity_column, source).to_numpy()[in_group]
                values = values.groupby(identity, sort=True).mean()
            units.append(values.to_numpy(dtype=float))
        return units

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        first, second = self.group_units(pairs_distances_df)

        def resampled(indices: Sequence[np.ndarray]) -> float:
            return relative_difference(first[indices[0]].mean(), second[indices[1]].mean())

        low, high = stats.stratified_bootstrap_interval(
            resampled, (first.size, second.size), self.n_bootstrap, self.confidence, self.seed
        )
        return self.result_row(
            {
                "Relative Difference": relative_difference(first.mean(), second.mean()),
                "Relative Difference CI Low": low,
                "Relative Difference CI High": high,
                group_mean_column(self.groups[0]): float(first.mean()),
                group_mean_column(self.groups[1]): float(second.mean()),
            }
        )

    def error_columns(self, column: str) -> tuple[str, str] | None:
        return (f"{column} CI Low", f"{column} CI High")


def group_mean_column(group: str) -> str:
    """``Group "Upright" Mean``."""
    return f'Group "{group}" Mean'


def relative_difference(first: float, second: float) -> float:
    """``(first - second) / (first + second)``; NaN when the sum is zero."""
    total = first + second
    return float((first - second) / total) if total != 0 else math.nan
