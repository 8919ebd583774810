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


class ConditionedAverageDistances(BaseTask):
    """Mean model distance for each condition of the pairs file, with a bootstrap interval.

    ``condition_column`` names the condition column (``"condition"`` by default; the seed lab's
    files call it ``"cond"``). ``normalize`` divides every distance of the model-layer by:

    - ``"max"`` (the default; ``True`` means the same): the largest absolute distance, so
      conditions compare across layers on a 0..1 scale, as researchers usually report them.
      One extreme pair sets the scale for every condition;
    - ``"mean"``: the mean absolute distance over all pairs, less sensitive to one pair (a pair
      moves it by 1/N of its change); a condition at 1.0 is as far apart as the average pair;
    - ``"none"`` (``False``): raw distances.

    When the scale is zero (every distance zero) distances are left as they are.

    ``Mean Value CI Low`` / ``High``: a seeded percentile bootstrap over IMAGES (the central
    ``confidence`` share of ``n_bootstrap`` resamples): each resample draws the images of all
    pairs with replacement and keeps every pair of drawn images (``a`` copies of one image and
    ``b`` of the other give ``a * b`` copies, as the correlation task does); the scale is
    recomputed in each resample. A condition absent from a resample is left out of that one.
    With ``"max"`` the interval leans upward: a resample's largest distance can only be at most
    the sample's, so resampled means are divided by a smaller scale (the bootstrap of a maximum
    is biased). The ``"mean"`` scale is affected much less: prefer it when the interval matters.

    Result: one row per condition, in the order the conditions first appear in the file, with
    columns ``Condition``, ``Mean Value``, ``Mean Value CI Low``, ``Mean Value CI High``,
    ``Distance Metric``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Mean Value",)

    def __init__(
        self,
        name: str | None = None,
        *,
        condition_column: str = "condition",
        normalize: bool | str = "max",
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``condition_column``: the column naming each pair's condition.
        - ``normalize``: max (default), mean or none: divide distances by the largest or mean distance.
        - ``n_bootstrap``: bootstrap resamples (over images) for the confidence interval.
        - ``confidence``: the interval's coverage, e.g. 0.95.
        - ``seed``: seeds the bootstrap.
        """
        if isinstance(normalize, bool):
            normalize = "max" if normalize else "none"
        if normalize not in NORMALIZATIONS:
            raise ConfigError(f"normalize must be one of {', '.join(NORMALIZATIONS)}, not {normalize!r}")
        stats.check_confidence(confidence)
        self.condition_column = condition_column
        self.normalize = normalize
        self.n_bootstrap = int(n_bootstrap)
        self.confidence = float(confidence)
        self.seed = int(seed)
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        return (*self.required_columns, self.condition_column)

    def column_options(self) -> dict[str, str]:
        return {self.condition_column: "condition_column"}

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame[self.condition_column] = text_column(frame, self.condition_column, self.pairs_file_path)
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
        conditions = text_column(pairs_distances_df, self.condition_column, f"task {self.name!r} distances")
        codes, names = pd.factorize(conditions)
        image1, image2, n_images = stats.image_codes(
            pairs_distances_df["img1"].to_numpy(), pairs_distances_df["img2"].to_numpy()
        )

        def means(weights: np.ndarray) -> np.ndarray:
            sums = np.bincount(codes, weights=weights * distances, minlength=len(names))
            counts = np.bincount(codes, weights=weights, minlength=len(names))
            with np.errstate(invalid="ignore", divide="ignore"):
                return sums / counts / self.scale(distances, weights)

        def resampled(drawn: np.ndarray) -> np.ndarray:
            return means(stats.image_resample_weights(image1, image2, drawn, n_images).astype(float))

        values = stats.bootstrap_values(resampled, n_images, self.n_bootstrap, self.seed)
        intervals = [stats.percentile_interval(values[:, k], self.confidence) for k in range(len(names))]
        return pd.DataFrame(
            {
                "Condition": names.astype(str),
                "Mean Value": means(np.ones(distances.size)),
                "Mean Value CI Low": [low for low, _ in intervals],
                "Mean Value CI High": [high for _, high in intervals],
                "Distance Metric": self.metric.name,
            }
        )

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
