"""``BaseTask``: a pairs file, its images and a distance metric, checked up front.

A task never runs a model. The manager hands it each model-layer's pair distances (its
``pairs_df`` plus a ``model_computed_distance`` column) and gets back a row of metrics.
"""

from __future__ import annotations

import abc
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.metrics import Metric, resolve_metric
from facebench.pairs import (
    IMAGE_COLUMNS,
    MAX_LISTED,
    check_no_missing,
    read_pairs_file,
    require_columns,
)

DISTANCE_COLUMN = "model_computed_distance"
BASE_PARAMETERS = frozenset({"self", "name", "pairs_file_path", "images_path", "distance_metric"})


class BaseTask(abc.ABC):
    """One benchmark task over a pairs file.

    Subclasses take their own options as keyword arguments, set them as attributes named like
    those parameters *before* calling ``super().__init__(name, **common)`` (so :meth:`columns` and
    :meth:`validate` can use them; ``common`` carries ``pairs_file_path``, ``images_path`` and
    ``distance_metric``), and implement :meth:`compute_task_performance`.
    """

    required_columns: ClassVar[tuple[str, ...]] = IMAGE_COLUMNS
    plot_columns: ClassVar[tuple[str, ...]] = ()
    """Result columns drawn by :meth:`plot`, one bar plot each."""

    def __init__(
        self,
        name: str | None = None,
        pairs_file_path: str | Path | None = None,
        images_path: str | Path | None = None,
        distance_metric: str | Callable[..., Any] | Metric = "cosine",
    ) -> None:
        if pairs_file_path is None or images_path is None:
            raise ConfigError(f"{type(self).__name__} needs pairs_file_path=... and images_path=...")
        self.pairs_file_path = Path(pairs_file_path)
        self.images_path = Path(images_path).absolute()
        self.name = name or self.pairs_file_path.stem
        self.metric = resolve_metric(distance_metric)
        if not self.images_path.is_dir():
            raise DataError(f"task {self.name!r}: images folder {str(self.images_path)!r} does not exist")
        frame = read_pairs_file(self.pairs_file_path)
        require_columns(frame, self.columns(), self.pairs_file_path, self.column_options())
        for column in IMAGE_COLUMNS:
            check_no_missing(frame, column, self.pairs_file_path)
        self.pairs_df: pd.DataFrame = self.validate(frame)
        self._check_images()

    # --- what subclasses customise -------------------------------------------------------
    def columns(self) -> tuple[str, ...]:
        """The columns this task needs in the pairs file (``required_columns`` by default)."""
        return self.required_columns

    def column_options(self) -> dict[str, str]:
        """Which option chooses which column, for error messages: ``{"same": "label_column"}``."""
        return {}

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check the task's own columns (label types, groups); return the frame to keep."""
        return frame

    @abc.abstractmethod
    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        """Metrics for one model-layer: one row (or one per condition), with "Distance Metric"."""

    # --- shared behaviour ----------------------------------------------------------------
    def image_paths(self) -> tuple[list[Path], list[Path]]:
        """The img1 and img2 paths, in ``pairs_df`` order, inside ``images_path``."""
        return (
            [self.images_path / name for name in self.pairs_df["img1"]],
            [self.images_path / name for name in self.pairs_df["img2"]],
        )

    def _check_images(self) -> None:
        names = pd.unique(self.pairs_df[list(IMAGE_COLUMNS)].to_numpy().ravel())
        root = os.path.normpath(self.images_path)
        escaping = [
            n
            for n in names
            if Path(n).is_absolute()
            or os.path.isabs(n)
            or os.path.commonpath([root, os.path.normpath(os.path.join(root, n))]) != root
        ]
        if escaping:
            raise DataError(
                f"{self.pairs_file_path}: image paths must stay inside the images folder "
                f"{str(self.images_path)!r}; these do not: {_listing(escaping)}. "
                f"Write them relative to the images folder, without '..'."
            )
        missing = [n for n in names if not (self.images_path / n).is_file()]
        if missing:
            raise DataError(
                f"{self.pairs_file_path}: {len(missing)} of {len(names)} images are not in "
                f"{str(self.images_path)!r}: {_listing(missing)}. "
                f"Check images_path, or the image names in the pairs file."
            )

    def pair_distances(self, pairs_distances_df: pd.DataFrame) -> np.ndarray:
        """The ``model_computed_distance`` column as finite floats, checked."""
        require_columns(pairs_distances_df, (DISTANCE_COLUMN,), f"task {self.name!r} distances")
        distances = pd.to_numeric(pairs_distances_df[DISTANCE_COLUMN], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(distances)
        if bad.any():
            raise DataError(
                f"task {self.name!r}: {int(bad.sum())} pair distances are not finite numbers "
                f"(first at pair {int(np.flatnonzero(bad)[0]) + 1}); the model produced NaN or inf"
            )
        return distances

    def result_row(self, values: dict[str, Any]) -> pd.DataFrame:
        """One result row with "Distance Metric" added."""
        return pd.DataFrame([{**values, "Distance Metric": self.metric.name}])

    def error_columns(self, column: str) -> tuple[str, str] | None:
        """Low/high columns drawn as error bars around ``column``, if the task has them."""
        return None

    def plot(self, output_dir: Path, performances: pd.DataFrame, **kwargs: Any) -> list[Path]:
        """Bar plots across models and layers, one per :attr:`plot_columns` entry present."""
        from facebench.plots import bar_plot
        from facebench.results import safe_filename

        written: list[Path] = []
        for column in self.plot_columns:
            if column not in performances.columns or performances[column].isna().all():
                continue
            errors = self.error_columns(column)
            if errors and not set(errors) <= set(performances.columns):
                errors = None
            written += bar_plot(
                performances,
                column,
                Path(output_dir),
                title=f"{self.name}: {column}",
                error_columns=errors,
                filename=safe_filename(f"{self.name}_{column}"),
            )
        return written

    def options(self) -> dict[str, Any]:
        """The task's own options (its ``__init__`` parameters beyond the common four)."""
        parameters = inspect.signature(type(self).__init__).parameters
        return {
            key: _jsonable(getattr(self, key))
            for key in parameters
            if key not in BASE_PARAMETERS and hasattr(self, key)
        }

    def describe(self) -> dict[str, Any]:
        """What results.json records about this task."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "pairs_file": str(self.pairs_file_path),
            "images_path": str(self.images_path),
            "metric": self.metric.name,
            "metric_bounded": self.metric.bounded,
            "pairs": len(self.pairs_df),
            "options": self.options(),
        }

    def __repr__(self) -> str:
        pairs, metric = len(self.pairs_df), self.metric.name
        return f"{type(self).__name__}(name={self.name!r}, pairs={pairs}, metric={metric!r})"


def _listing(items: list[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value
