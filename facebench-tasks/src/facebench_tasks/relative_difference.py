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

    The confidence interval accounts for the design's independent units; ``Relative Difference
    CI Unit`` names them:

    - without ``identity_column``, IMAGES: pairs share images, so pairs are not independent.
      The interval is ``estimate +- t * sd`` with the dyadic-robust variance of the two means
      (see :func:`facebench_tasks.stats.pair_graph_interval`). An image bootstrap (a pair of
      images drawn ``a`` and ``b`` times entering ``a * b`` times) would count each pair's own
      noise three times and be too wide where images are in few pairs;
    - with ``identity_column``, IDENTITIES, by a seeded percentile bootstrap (the central
      ``confidence`` share of ``n_bootstrap`` resamples) jointly across the groups: the same
      identities appear in both groups, so resampling each group on its own would ignore that
      their means move together (too wide). A drawn identity brings its per-identity mean in
      each group; resamples in which a group is empty are left out.

    Result columns: ``Relative Difference``, ``Relative Difference CI Low``,
    ``Relative Difference CI High``, ``Relative Difference CI Unit``, ``Group "<group 1>" Mean``,
    ``Group "<group 2>" Mean`` (the names the human percentiles file uses), ``Distance Metric``.
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
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``group_column``: the column naming each pair's group.
        - ``groups``: the two groups to compare, in order: (m1 - m2) / (m1 + m2).
        - ``identity_column``: average per identity first, and bootstrap identities, not images.
        - ``n_bootstrap``: bootstrap resamples for the identity interval.
        - ``confidence``: the interval's coverage, e.g. 0.95.
        - ``seed``: seeds the identity bootstrap.
        """
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
        source = f"task {self.name!r} distances"
        group = text_column(pairs_distances_df, self.group_column, source).to_numpy()
        rows = np.isin(group, self.groups)
        pairs = pairs_distances_df[rows]
        identities = (
            text_column(pairs, self.identity_column, source).to_numpy() if self.identity_column else None
        )
        low, high = relative_difference_interval(
            self.pair_distances(pairs),
            group[rows] == self.groups[1],
            pairs["img1"].to_numpy(),
            pairs["img2"].to_numpy(),
            identities,
            self.n_bootstrap,
            self.confidence,
            self.seed,
        )
        return self.result_row(
            {
                "Relative Difference": relative_difference(first.mean(), second.mean()),
                "Relative Difference CI Low": low,
                "Relative Difference CI High": high,
                "Relative Difference CI Unit": "identities (bootstrap)"
                if self.identity_column
                else IMAGE_UNIT,
                group_mean_column(self.groups[0]): float(first.mean()),
                group_mean_column(self.groups[1]): float(second.mean()),
            }
        )

    def error_columns(self, column: str) -> tuple[str, str] | None:
        return (f"{column} CI Low", f"{column} CI High")


IMAGE_UNIT = "images (dyadic-robust t interval)"


def group_mean_column(group: str) -> str:
    """``Group "Upright" Mean``."""
    return f'Group "{group}" Mean'


def relative_difference(first: float, second: float) -> float:
    """``(first - second) / (first + second)``; NaN when the sum is zero or a mean is NaN."""
    total = first + second
    return float((first - second) / total) if total != 0 and math.isfinite(total) else math.nan


def relative_difference_interval(
    distances: np.ndarray,
    in_second: np.ndarray,
    img1: np.ndarray,
    img2: np.ndarray,
    identities: np.ndarray | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval of :func:`relative_difference` of the two groups' means.

    ``in_second`` marks the pairs of the second group (the others are the first). Without
    ``identities``: the dyadic-robust interval over images; with them (one per pair): a
    percentile bootstrap of identities, jointly across both groups, each group's mean the mean
    of its per-identity means (see :class:`RelativeDifferenceTask`).
    """
    distances = np.asarray(distances, dtype=float)
    masks = (~np.asarray(in_second, dtype=bool), np.asarray(in_second, dtype=bool))
    if identities is None:
        image1, image2, n_images = stats.image_codes(img1, img2)
        first, second = (distances[m].mean() if m.any() else math.nan for m in masks)
        total = first + second
        derivatives = (2.0 * second / total**2, -2.0 * first / total**2)
        terms = [(distances, m, g) for m, g in zip(masks, derivatives, strict=True)]
        estimate = relative_difference(first, second)
        low, high = stats.pair_graph_interval(estimate, terms, image1, image2, n_images, confidence)
        if (distances >= 0).all():  # then the relative difference lies in [-1, 1]
            low, high = max(low, -1.0), min(high, 1.0)
        return low, high
    codes, names = pd.factorize(pd.Series(identities))
    groups = [pd.Series(distances[m]).groupby(codes[m], sort=True).mean() for m in masks]
    parts = [(g.index.to_numpy(), g.to_numpy(dtype=float)) for g in groups]

    def statistic(drawn: np.ndarray) -> float:
        counts = np.bincount(drawn, minlength=len(names))
        means = [stats.weighted_mean(values, counts[ids]) for ids, values in parts]
        return relative_difference(*means)

    return stats.bootstrap_interval(statistic, len(names), n_resamples, confidence, seed)
