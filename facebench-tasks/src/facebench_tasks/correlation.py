"""Correlation of model distances with human distances (similarity ratings, feature changes)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from facebench.errors import ConfigError, DataError
from facebench.pairs import numeric_column
from facebench.task import DISTANCE_COLUMN, BaseTask
from facebench_tasks import stats

CorrelationFunction = Callable[[np.ndarray, np.ndarray], Any]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r (as ``scipy.stats.pearsonr``, without its p-value: fast in the bootstrap)."""
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else math.nan


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the ranks, ties averaged (as ``scipy.stats.spearmanr``)."""
    return pearson(scipy_stats.rankdata(x), scipy_stats.rankdata(y))


NAMED_CORRELATIONS: dict[str, CorrelationFunction] = {"pearson": pearson, "spearman": spearman}
MIN_PAIRS = 3
INFORMATIVE_PAIRS = 10


class UninformativeIntervalWarning(UserWarning):
    """An interval computed from too few pairs to mean anything."""


class CorrelationTask(BaseTask):
    """How well model distances follow the human distances in the pairs file.

    ``correlation_function`` is ``"pearson"`` (default), ``"spearman"``, or a callable
    ``f(model, human)`` returning a number, a ``(statistic, p-value)`` tuple, a scipy result or
    a 2 x 2 matrix (``numpy.corrcoef``).

    The confidence interval is a seeded percentile bootstrap over IMAGES, not pairs: pairs share
    images, so resampling pairs would treat dependent pairs as independent and make the interval
    too narrow. Each resample draws the images with replacement and keeps every pair of drawn
    images (``a`` copies of one image and ``b`` of the other give ``a * b`` copies of the pair).

    The interval is clipped to [-1, 1] (rounding can put a resampled correlation a hair past
    1). With fewer than ``INFORMATIVE_PAIRS`` (10) pairs it is reported but a warning says it is
    not informative: so few pairs give a handful of distinct resamples, many of them exactly +-1.

    Undefined cases are errors, never a silent NaN: constant human distances are refused when
    the task is created, and a model-layer whose correlation is NaN (e.g. all its distances are
    equal) fails with a message, recorded among the run's failures.

    Result columns: ``Correlation Score``, ``Correlation Score CI Low``,
    ``Correlation Score CI High``, ``Correlation Score CI Unit`` (``images (bootstrap)``),
    ``Distance Metric``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Correlation Score",)

    def __init__(
        self,
        name: str | None = None,
        *,
        distance_column: str = "distance",
        correlation_function: str | CorrelationFunction = "pearson",
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``distance_column``: the human distance of each pair (larger = more different).
        - ``correlation_function``: pearson, spearman, or a callable f(model, human) (Python only).
        - ``n_bootstrap``: bootstrap resamples (over images) for the confidence interval.
        - ``confidence``: the interval's coverage, e.g. 0.95.
        - ``seed``: seeds the bootstrap.
        """
        if isinstance(correlation_function, str) and correlation_function not in NAMED_CORRELATIONS:
            raise ConfigError(
                f"correlation_function {correlation_function!r} is not known; use "
                f"{' or '.join(map(repr, NAMED_CORRELATIONS))}, or pass a callable"
            )
        if not callable(correlation_function) and not isinstance(correlation_function, str):
            raise ConfigError(
                f"correlation_function must be a name or a callable, not {correlation_function!r}"
            )
        stats.check_confidence(confidence)
        self.distance_column = distance_column
        self.correlation_function = correlation_function
        self.n_bootstrap = int(n_bootstrap)
        self.confidence = float(confidence)
        self.seed = int(seed)
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        return (*self.required_columns, self.distance_column)

    def column_options(self) -> dict[str, str]:
        return {self.distance_column: "distance_column"}

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        human = numeric_column(frame, self.distance_column, self.pairs_file_path)
        if len(frame) < MIN_PAIRS:
            raise DataError(f"{self.pairs_file_path}: a correlation needs at least {MIN_PAIRS} pairs")
        if np.ptp(human) == 0:
            raise DataError(
                f"{self.pairs_file_path}: every value of column {self.distance_column!r} is {human[0]:g}; "
                f"a correlation with constant human distances is undefined"
            )
        return frame

    def correlate(self, model: np.ndarray, human: np.ndarray) -> float:
        """The configured correlation of ``model`` with ``human`` distances, as a float."""
        function = self.correlation_function
        if isinstance(function, str):
            function = NAMED_CORRELATIONS[function]
        try:
            return stats.as_correlation(function(model, human))
        except ValueError as exc:
            name = getattr(function, "__name__", repr(function))
            raise ConfigError(f"correlation function {name!r}: {exc}") from exc

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        model = self.pair_distances(pairs_distances_df)
        human = numeric_column(pairs_distances_df, self.distance_column, f"task {self.name!r} distances")
        score = self.correlate(model, human)
        if not math.isfinite(score):
            constant = " (the model's distances are all equal at this layer)" if np.ptp(model) == 0 else ""
            raise DataError(
                f"task {self.name!r}: the correlation of model and human distances is undefined "
                f"(NaN){constant}; no score is reported for this layer"
            )
        low, high = self.bootstrap_interval(pairs_distances_df, model, human)
        return self.result_row(
            {
                "Correlation Score": score,
                "Correlation Score CI Low": low,
                "Correlation Score CI High": high,
                "Correlation Score CI Unit": "images (bootstrap)",
            }
        )

    def bootstrap_interval(
        self, pairs: pd.DataFrame, model: np.ndarray, human: np.ndarray
    ) -> tuple[float, float]:
        """Percentile CI of the correlation over image resamples (see the class docstring)."""
        image1, image2, n_images = stats.image_codes(pairs["img1"].to_numpy(), pairs["img2"].to_numpy())

        def resampled(drawn: np.ndarray) -> float:
            weights = stats.image_resample_weights(image1, image2, drawn, n_images)
            keep = np.repeat(np.arange(len(pairs)), weights)
            if keep.size < MIN_PAIRS:
                return math.nan
            return self.correlate(model[keep], human[keep])

        if len(pairs) < INFORMATIVE_PAIRS:
            warnings.warn(
                f"task {self.name!r}: the correlation's interval comes from only {len(pairs)} pairs "
                f"({n_images} images); with fewer than {INFORMATIVE_PAIRS} it is not informative. "
                f"Report the score without it, or add pairs.",
                UninformativeIntervalWarning,
                stacklevel=2,
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant resamples: undefined, left out as NaN
            low, high = stats.bootstrap_interval(
                resampled, n_images, self.n_bootstrap, self.confidence, self.seed
            )
        return max(low, -1.0), min(high, 1.0)

    def error_columns(self, column: str) -> tuple[str, str] | None:
        return (f"{column} CI Low", f"{column} CI High")

    def plot(
        self,
        output_dir: Path,
        performances: pd.DataFrame,
        pairs_distances: pd.DataFrame | None = None,
        **kwargs: Any,
    ) -> list[Path]:
        """Bars of the correlation (with its CI) across models and layers and, given
        ``pairs_distances`` (columns "Model Name", "Layer Name", the human distance column and
        ``model_computed_distance``), a scatter of model vs human distances per model-layer."""
        from facebench.plots import scatter_plot
        from facebench.results import safe_filename

        written = super().plot(output_dir, performances, **kwargs)
        if pairs_distances is None:
            return written
        for (model_name, layer), rows in pairs_distances.groupby(["Model Name", "Layer Name"], sort=False):
            written += scatter_plot(
                rows[self.distance_column].to_numpy(float),
                rows[DISTANCE_COLUMN].to_numpy(float),
                Path(output_dir),
                title=f"{self.name}: {model_name} {layer}",
                xlabel=f"human {self.distance_column}",
                ylabel=f"model distance ({self.metric.name})",
                filename=safe_filename(f"{self.name}_scatter_{model_name}_{layer}"),
            )
        return written
