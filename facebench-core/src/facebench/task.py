"""``BaseTask``: a pairs file and/or an images table, their images and a distance metric,
checked up front; and the task contract the manager runs.

The task contract
-----------------
A task never runs a model. For every layer of every model, the manager calls ONE method,
:meth:`BaseTask.evaluate`, with a :class:`facebench.layer_view.LayerView`: that layer's
embeddings of the task's images (:meth:`BaseTask.image_names`, in that order), read from the
embedding store in chunks. ``evaluate`` returns a :class:`TaskResult`: the performance rows
(metrics, with ``"Distance Metric"``) and, optionally, per-pair rows exported to
``distances/<model>/<layer>/<task>.csv``. The manager adds ``Model Name``, ``Layer Name`` and
``Task Name`` and never looks at what kind of task it runs.

* **Pair tasks** (the default ``evaluate``) get today's behaviour: the listed pairs' distances
  under the task's metric, ``pairs_df`` plus a ``model_computed_distance`` column, passed to
  :meth:`BaseTask.compute_task_performance`, and exported per pair. They implement only
  ``compute_task_performance``.
* **Embedding tasks** (RSA, probes, adaptation heads) override ``evaluate(view)`` and read what
  they need: ``view.iter_chunks()``, ``view.gram()``, ``view.pairwise_distances(metric)``,
  ``view.pair_distances(img1, img2, metric)`` or ``view.read(rows)`` for rows they bound.
  No method of the view requires a wide flattened layer in memory at once.

Inputs: a **pairs file** (``pairs_file_path``: ``img1``, ``img2`` and per-pair columns) and/or
an **images table** (``table_path``: an ``image`` column and per-image columns: identity,
gender, condition ...; ``--table FILE`` / ``table = "..."``). The class attributes
:attr:`BaseTask.pairs_file` and :attr:`BaseTask.images_table` say whether each is
``"required"``, ``"optional"`` or ``"unused"``; the table is read by
:func:`facebench.pairs.read_table_file` into :attr:`BaseTask.table_df` and checked by
:meth:`BaseTask.table_columns` / :meth:`BaseTask.validate_table`. Every image of both is checked
up front (it exists, and its path stays inside ``images_path``). The rows a view holds are the
table's images in table order when there is a table, else the pairs' images in order of first
appearance (:meth:`BaseTask.image_names`; a task that reads both checks that its pairs' images
are in its table, as ``rsa`` does). The manager embeds each image once per model
(content-hashed, cached, on the model's device), and a task that raises fails alone (recorded,
the others go on).
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.metrics import Metric, resolve_metric
from facebench.pairs import (
    IMAGE_COLUMNS,
    MAX_LISTED,
    TABLE_IMAGE_COLUMN,
    check_no_missing,
    read_pairs_file,
    read_table_file,
    require_columns,
)

if TYPE_CHECKING:
    from facebench.layer_view import LayerView
    from facebench.plots import HumanBand

logger = logging.getLogger(__name__)
DISTANCE_COLUMN = "model_computed_distance"
BASE_PARAMETERS = frozenset(
    {"self", "name", "pairs_file_path", "images_path", "distance_metric", "table_path"}
)
Need = Literal["required", "optional", "unused"]


@dataclass
class TaskResult:
    """What :meth:`BaseTask.evaluate` returns for one model-layer."""

    performance: pd.DataFrame
    """Metric rows: one (or one per condition), with a ``"Distance Metric"`` column."""
    distances: pd.DataFrame | None = None
    """Per-pair rows for ``distances/<model>/<layer>/<task>.csv`` (None: nothing to export)."""


class BaseTask:
    """One benchmark task over a pairs file and/or an images table (see the module docstring).

    Subclasses take their own options as keyword arguments, set them as attributes named like
    those parameters *before* calling ``super().__init__(name, **common)`` (so :meth:`columns` and
    :meth:`validate` can use them; ``common`` carries ``pairs_file_path``, ``table_path``,
    ``images_path`` and ``distance_metric``), and implement :meth:`compute_task_performance`
    (pair tasks) or :meth:`evaluate` (tasks that read embeddings).
    """

    required_columns: ClassVar[tuple[str, ...]] = IMAGE_COLUMNS
    required_table_columns: ClassVar[tuple[str, ...]] = (TABLE_IMAGE_COLUMN,)
    pairs_file: ClassVar[Need] = "required"
    """Whether the task reads a pairs file: "required", "optional" or "unused"."""
    images_table: ClassVar[Need] = "unused"
    """Whether the task reads an images table: "required", "optional" or "unused"."""
    plot_columns: ClassVar[tuple[str, ...]] = ()
    """Result columns drawn by :meth:`plot`, one bar plot each."""
    human_columns: ClassVar[dict[str, str]] = {}
    """Result column -> the metric name a human percentiles table uses for it, where they differ
    (``{"Cross-Validated Accuracy": "Accuracy"}``); other columns are looked up by their own name."""

    def __init__(
        self,
        name: str | None = None,
        pairs_file_path: str | Path | None = None,
        images_path: str | Path | None = None,
        distance_metric: str | Callable[..., Any] | Metric = "cosine",
        table_path: str | Path | None = None,
    ) -> None:
        """Options every task has.

        - ``name``: the task's name in results (default: the pairs file's or table's name).
        - ``pairs_file_path``: the pairs file (img1, img2 and the task's columns; --pairs).
        - ``images_path``: the folder the image paths are relative to (--images).
        - ``distance_metric``: a registered metric (facebench list metrics) or a callable (Python only).
        - ``table_path``: an images table (an image column and per-image columns; --table).
        """
        kind = type(self).__name__
        for given, need, what in (
            (pairs_file_path, self.pairs_file, "pairs_file_path (a pairs file, --pairs)"),
            (table_path, self.images_table, "table_path (an images table, --table)"),
        ):
            if given is None and need == "required":
                raise ConfigError(f"{kind} needs {what}")
            if given is not None and need == "unused":
                raise ConfigError(f"{kind} does not read {what}; leave it out for this task")
        if images_path is None:
            raise ConfigError(f"{kind} needs images_path=... (the images folder, --images)")
        if type(self).evaluate is BaseTask.evaluate and (
            type(self).compute_task_performance is BaseTask.compute_task_performance
        ):
            raise TypeError(f"{kind} must implement compute_task_performance or evaluate")
        self.pairs_file_path = None if pairs_file_path is None else Path(pairs_file_path)
        self.table_path = None if table_path is None else Path(table_path)
        self.images_path = Path(images_path).absolute()
        source = self.pairs_file_path or self.table_path
        self.name = name or (source.stem if source else kind)
        self.metric = resolve_metric(distance_metric)
        if not self.images_path.is_dir():
            raise DataError(f"task {self.name!r}: images folder {str(self.images_path)!r} does not exist")
        self.pairs_df: pd.DataFrame | None = None
        self.table_df: pd.DataFrame | None = None
        if self.table_path is not None:
            table = read_table_file(self.table_path)
            require_columns(table, self.table_columns(), self.table_path, self.column_options())
            self.table_df = self.validate_table(table)
            self._check_images(self.table_df[TABLE_IMAGE_COLUMN], self.table_path)
        if self.pairs_file_path is not None:
            frame = read_pairs_file(self.pairs_file_path)
            require_columns(frame, self.columns(), self.pairs_file_path, self.column_options())
            for column in IMAGE_COLUMNS:
                check_no_missing(frame, column, self.pairs_file_path)
            self.pairs_df = self.validate(frame)
            self._check_images(self.pairs_df[list(IMAGE_COLUMNS)].to_numpy().ravel(), self.pairs_file_path)

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

    def table_columns(self) -> tuple[str, ...]:
        """The columns this task needs in the images table (``required_table_columns``)."""
        return self.required_table_columns

    def validate_table(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check the images table's own columns; return the frame to keep."""
        return frame

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        """Metrics for one model-layer: one row (or one per condition), with "Distance Metric".

        Pair tasks implement this; it receives ``pairs_df`` plus ``model_computed_distance``.
        """
        raise NotImplementedError(f"{type(self).__name__} implements evaluate(view), not this")

    def evaluate(self, view: LayerView) -> TaskResult:
        """The task's result for one model-layer, whose embeddings ``view`` holds.

        The default (pair tasks): the listed pairs' distances under :attr:`metric`, then
        :meth:`compute_task_performance`; the pairs with their distances are exported.
        Embedding tasks override this.
        """
        pairs = self.pairs_df.copy()
        pairs[DISTANCE_COLUMN] = view.pair_distances(pairs["img1"], pairs["img2"], self.metric)
        return TaskResult(self.compute_task_performance(pairs), pairs)

    # --- shared behaviour ----------------------------------------------------------------
    def image_names(self) -> list[str]:
        """The rows of the task's views: the table's images in table order when there is a
        table, else the pairs' images in order of first appearance (relative to ``images_path``)."""
        if self.table_df is not None:
            return [str(name) for name in self.table_df[TABLE_IMAGE_COLUMN]]
        return [str(name) for name in pd.unique(self.pairs_df[list(IMAGE_COLUMNS)].to_numpy().ravel())]

    def embedded_images(self) -> list[Path]:
        """Every image the task reads (the table's and the pairs'), once each, as paths."""
        names = dict.fromkeys(self.image_names())
        if self.pairs_df is not None:
            names.update(dict.fromkeys(str(n) for n in self.pairs_df[list(IMAGE_COLUMNS)].to_numpy().ravel()))
        return [self.images_path / name for name in names]

    def without_images(self, paths: Collection[Path]) -> BaseTask:
        """A copy of this task without the pairs and images-table rows that use any of ``paths``
        (images a model could not embed and whose pairs its policy leaves out, e.g.
        ``on_no_face=skip``); what was left out is logged."""
        left_out = set(paths)

        def uses(names: pd.Series) -> pd.Series:
            return names.map(lambda name: self.images_path / str(name) in left_out)

        trimmed = copy.copy(self)
        dropped = 0
        if self.pairs_df is not None:
            drop = uses(self.pairs_df["img1"]) | uses(self.pairs_df["img2"])
            trimmed.pairs_df = self.pairs_df[~drop].reset_index(drop=True)
            dropped = int(drop.sum())
        if self.table_df is not None:
            drop = uses(self.table_df[TABLE_IMAGE_COLUMN])
            trimmed.table_df = self.table_df[~drop].reset_index(drop=True)
            dropped += int(drop.sum())
        logger.warning(
            "task %s: left out %d pair(s) or row(s) that use %d image(s) the model could not take: %s",
            self.name,
            dropped,
            len(left_out),
            ", ".join(sorted(str(path) for path in left_out)),
        )
        return trimmed

    def image_paths(self) -> tuple[list[Path], list[Path]]:
        """The img1 and img2 paths, in ``pairs_df`` order, inside ``images_path`` (pair tasks)."""
        if self.pairs_df is None:
            return [], []
        return (
            [self.images_path / name for name in self.pairs_df["img1"]],
            [self.images_path / name for name in self.pairs_df["img2"]],
        )

    def _check_images(self, listed: Any, source: Path) -> None:
        check_image_names(listed, self.images_path, source)

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

    def reference_band(self, column: str, performances: pd.DataFrame) -> HumanBand | None:
        """A reference band for the by-layer curves of ``column`` (e.g. RSA's noise ceiling),
        drawn when no human percentiles file gives one; None by default."""
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
        """The task's own options (its ``__init__`` parameters beyond the common ones)."""
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
            "pairs_file": None if self.pairs_file_path is None else str(self.pairs_file_path),
            "table_file": None if self.table_path is None else str(self.table_path),
            "images_path": str(self.images_path),
            "metric": self.metric.name,
            "metric_bounded": self.metric.bounded,
            "pairs": None if self.pairs_df is None else len(self.pairs_df),
            "images": len(self.image_names()),
            "options": self.options(),
        }

    def __repr__(self) -> str:
        pairs = None if self.pairs_df is None else len(self.pairs_df)
        return (
            f"{type(self).__name__}(name={self.name!r}, pairs={pairs}, "
            f"images={len(self.image_names())}, metric={self.metric.name!r})"
        )


def check_image_names(listed: Any, images_path: Path, source: Path) -> None:
    """Every image name in ``listed`` stays inside ``images_path`` and is a file there, or a
    :class:`DataError` naming the first offenders and how many there are."""
    names = [str(n) for n in pd.unique(np.asarray(listed, dtype=object))]
    root = os.path.normpath(images_path)
    escaping = [
        n
        for n in names
        if Path(n).is_absolute()
        or os.path.isabs(n)
        or os.path.commonpath([root, os.path.normpath(os.path.join(root, n))]) != root
    ]
    if escaping:
        raise DataError(
            f"{source}: image paths must stay inside the images folder "
            f"{str(images_path)!r}; these do not: {_listing(escaping)}. "
            f"Write them relative to the images folder, without '..'."
        )
    real_root = os.path.realpath(images_path)
    linked_out = [
        n
        for n in names
        if os.path.commonpath([real_root, os.path.realpath(os.path.join(root, n))]) != real_root
    ]
    if linked_out:
        raise DataError(
            f"{source}: these images are symbolic links (or lie in linked folders) leading outside "
            f"the images folder {str(images_path)!r}, refused like '..' paths: {_listing(linked_out)}. "
            f"Copy the files into the images folder, or use a folder that holds them all as images."
        )
    missing = [n for n in names if not (images_path / n).is_file()]
    if missing:
        raise DataError(
            f"{source}: {len(missing)} of {len(names)} images are not in "
            f"{str(images_path)!r}: {_listing(missing)}. "
            f"Check images_path, or the image names in {source.name}."
        )


def _listing(items: list[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if callable(value):
        return getattr(value, "__name__", repr(value))
    return value
