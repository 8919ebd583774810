"""Average distance per condition (view changes, critical vs non-critical feature changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from facebench.errors import ConfigError
from facebench.pairs import text_column
from facebench.task import BaseTask
from facebench_tasks import stats

NORMALIZATIONS = ("max", "mean", "none")
IMAGE_UNIT = "images (dyadic-robust t interval)"


class ConditionedAverageDistances(BaseTask):
    """Mean model distance for each condition of the pairs file, with a bootstrap interval.

    ``condition_column`` names the condition column (``"condition"`` by default; the seed lab's
    files call it ``"cond"``). ``normalize`` divides every distance of the model-layer by:

    - ``"mean"`` (the default): the mean absolute distance over all pairs, so conditions
      compare across layers; a condition at 1.0 is as far apart as the average pair;
    - ``"max"`` (``True`` means the same): the largest absolute distance, a 0..1 scale. One
      extreme pair sets the scale for every condition, and a sample maximum has no usable
      sampling distribution: the interval treats it as a fixed unit (the raw mean's interval
      divided by it);
    - ``"none"`` (``False``): raw distances.

    When the scale is zero (every distance zero) distances are left as they are.

    ``Mean Value CI Low`` / ``High`` account for the design's independent units, which
    ``Mean Value CI Unit`` names:

    - without ``cluster_column``, IMAGES: pairs share images, so pairs are not independent.
      The interval is ``estimate +- t * sd`` with the dyadic-robust variance of the condition's
      mean over the scale (see :func:`facebench_tasks.stats.pair_graph_interval`);
    - with ``cluster_column`` (e.g. the identity every pair of a row belongs to), CLUSTERS, by a
      seeded percentile bootstrap (the central ``confidence`` share of ``n_bootstrap``
      resamples); the ``"mean"`` scale is recomputed in each resample. A condition absent from
      a resample is left out of that one. Clusters must be independent: no image in two.

    Result: one row per condition, in the order the conditions first appear in the file, with
    columns ``Condition``, ``Mean Value``, ``Mean Value CI Low``, ``Mean Value CI High``,
    ``Mean Value CI Unit``, ``Distance Metric``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Mean Value",)

    def __init__(
        self,
        name: str | None = None,
        *,
        condition_column: str = "condition",
        normalize: bool | str = "mean",
        cluster_column: str | None = None,
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``condition_column``: the column naming each pair's condition.
        - ``normalize``: mean (default), max or none: divide distances by the mean or largest distance.
        - ``cluster_column``: a column naming each pair's independent cluster; bootstrap clusters.
        - ``n_bootstrap``: bootstrap resamples (over clusters) for the confidence interval.
        - ``confidence``: the interval's coverage, e.g. 0.95.
        - ``seed``: seeds the cluster bootstrap.
        """
        if isinstance(normalize, bool):
            normalize = "max" if normalize else "none"
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, not {normalize!r}")
        stats.check_confidence(confidence)
        self.condition_column = condition_column
        self.normalize = normalize
        self.cluster_column = cluster_column
        self.n_bootstrap = int(n_bootstrap)
        self.confidence = float(confidence)
        self.seed = int(seed)
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        extra = (self.cluster_column,) if self.cluster_column else ()
        return (*self.required_columns, self.condition_column, *extra)

    def column_options(self) -> dict[str, str]:
        options = {self.condition_column: "condition_column"}
        if self.cluster_column:
            options[self.cluster_column] = "cluster_column"
        return options

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for column in (self.condition_column, self.cluster_column):
            if column:
                frame[column] = text_column(frame, column, self.pairs_file_path)
        return frame

    def conditions(self) -> list[str]:
        """The conditions, in the order they first appear in the pairs file."""
        return list(pd.unique(self.pairs_df[self.condition_column]))

    def scale(self, distances: np.ndarray, weights: np.ndarray) -> float:
        """What ``normalize`` divides the distances by (1 when it is zero or "none")."""
        if self.normalize == "max":
            scale = float(np.max(np.abs(distances[weights > 0]), initial=0.0))
        elif self.normalize == "mean":
            scale = stats.weighted_mean(np.abs(distances), weights)
        else:
            scale = 1.0
        return scale if scale > 0 else 1.0

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        distances = self.pair_distances(pairs_distances_df)
        source = f"task {self.name!r} distances"
        codes, names = pd.factorize(text_column(pairs_distances_df, self.condition_column, source))
        everything = np.ones(distances.size)
        scale = self.scale(distances, everything)

        def means(weights: np.ndarray) -> np.ndarray:
            sums = np.bincount(codes, weights=weights * distances, minlength=len(names))
            counts = np.bincount(codes, weights=weights, minlength=len(names))
            resampled_scale = self.scale(distances, weights) if self.normalize == "mean" else scale
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums / counts / resampled_scale

        values = means(everything)
        if self.cluster_column:
            clusters, cluster_names = pd.factorize(
                text_column(pairs_distances_df, self.cluster_column, source)
            )

            def resampled(drawn: np.ndarray) -> np.ndarray:
                return means(np.bincount(drawn, minlength=len(cluster_names))[clusters].astype(float))

            draws = stats.bootstrap_values(resampled, len(cluster_names), self.n_bootstrap, self.seed)
            intervals = [stats.percentile_interval(draws[:, k], self.confidence) for k in range(len(names))]
            unit = f"clusters of {self.cluster_column!r} (bootstrap)"
        else:
            intervals = self.image_intervals(pairs_distances_df, distances, codes, values, scale)
            unit = IMAGE_UNIT
        return pd.DataFrame(
            {
                "Condition": names.astype(str),
                "Mean Value": values,
                "Mean Value CI Low": [low for low, _ in intervals],
                "Mean Value CI High": [high for _, high in intervals],
                "Mean Value CI Unit": unit,
                "Distance Metric": self.metric.name,
            }
        )

    def image_intervals(
        self, pairs: pd.DataFrame, distances: np.ndarray, codes: np.ndarray, values: np.ndarray, scale: float
    ) -> list[tuple[float, float]]:
        """Per condition, the dyadic-robust interval of its mean over the scale."""
        image1, image2, n_images = stats.image_codes(pairs["img1"].to_numpy(), pairs["img2"].to_numpy())
        everyone = np.ones(distances.size, dtype=bool)
        intervals = []
        for k, value in enumerate(values):
            terms: list[stats.MeanTerm] = [(distances, codes == k, 1.0 / scale)]
            if self.normalize == "mean" and np.abs(distances).mean() > 0:  # the scale is estimated too
                terms.append((np.abs(distances), everyone, -value / scale))
            intervals.append(
                stats.pair_graph_interval(value, terms, image1, image2, n_images, self.confidence)
            )
        return intervals

    def plot(self, output_dir: Path, performances: pd.DataFrame, **kwargs: Any) -> list[Path]:
        """One bar plot of the mean value (with its interval) across models and layers per condition."""
        from facebench.plots import bar_plot
        from facebench.results import safe_filename

        errors = self.error_columns("Mean Value")
        if not set(errors) <= set(performances.columns):
            errors = None
        written: list[Path] = []
        for condition, rows in performances.groupby("Condition", sort=False):
            written += bar_plot(
                rows,
                "Mean Value",
                Path(output_dir),
                title=f"{self.name} - {condition}: Mean Value",
                error_columns=errors,
                filename=safe_filename(f"{self.name}_{condition}_Mean_Value"),
            )
        return written

    def error_columns(self, column: str) -> tuple[str, str]:
        return (f"{column} CI Low", f"{column} CI High")
