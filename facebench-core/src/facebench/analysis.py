"""``BaseAnalysis``: an analysis that spans models (CKA between every layer of every model ...).

The analysis contract
---------------------
Analyses are a plugin kind of their own (hook ``register_analyses``, :class:`AnalysisSpec`,
``facebench list analyses``). The manager runs each one once, after every model has been
embedded, calling :meth:`BaseAnalysis.run` with a mapping ``{(model name, layer): LayerView}``
over every embedded model-layer; the views (:class:`facebench.layer_view.LayerView`) read only
the embedding store, in chunks. ``run`` returns one tidy table, written to
``analyses/<name>.csv``; :meth:`BaseAnalysis.plot` draws it into ``plots/analyses/<name>/``.
An analysis that raises is recorded as a failure and the rest of the run is kept.

Images: with ``table_path`` (an images table, read like a task's: an ``image`` column, paths
inside ``images_path``, all checked up front) the analysis reads those images, which the manager
embeds with the tasks' images; without one, every image of the run's tasks.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError, DataError
from facebench.pairs import TABLE_IMAGE_COLUMN, read_table_file
from facebench.task import check_image_names

if TYPE_CHECKING:
    import pandas as pd

    from facebench.layer_view import LayerView

BASE_PARAMETERS = frozenset({"self", "name", "table_path", "images_path"})


class BaseAnalysis(abc.ABC):
    """One analysis across models and layers (see the module docstring).

    Subclasses set their options as attributes named like their ``__init__`` parameters, call
    ``super().__init__(name, **common)`` and implement :meth:`run` (and usually :meth:`plot`).
    """

    default_name: str = "analysis"

    def __init__(
        self,
        name: str | None = None,
        table_path: str | Path | None = None,
        images_path: str | Path | None = None,
    ) -> None:
        self.name = name or self.default_name
        self.table_path = None if table_path is None else Path(table_path)
        self.images_path = None if images_path is None else Path(images_path).absolute()
        self.table_df: pd.DataFrame | None = None
        if self.table_path is None:
            if self.images_path is not None:
                raise ConfigError(
                    f"analysis {self.name!r}: images_path is only used with an images table "
                    f"(table_path); without one the analysis reads every image of the run's tasks"
                )
            return
        if self.images_path is None:
            raise ConfigError(
                f"analysis {self.name!r}: an images table needs images_path (the images folder)"
            )
        if not self.images_path.is_dir():
            raise DataError(f"analysis {self.name!r}: images folder {str(self.images_path)!r} does not exist")
        self.table_df = read_table_file(self.table_path)
        check_image_names(self.table_df[TABLE_IMAGE_COLUMN], self.images_path, self.table_path)

    def image_names(self) -> list[str]:
        """The images table's image names ([] without a table)."""
        return [] if self.table_df is None else [str(n) for n in self.table_df[TABLE_IMAGE_COLUMN]]

    def image_paths(self) -> list[Path]:
        """The images table's images as paths ([] without a table: the run's task images)."""
        assert self.images_path is not None or self.table_df is None
        return [self.images_path / name for name in self.image_names()] if self.images_path else []

    @abc.abstractmethod
    def run(self, views: Mapping[tuple[str, str], LayerView]) -> pd.DataFrame:
        """The analysis over ``{(model, layer): view}``, as one tidy table."""

    def plot(self, output_dir: Path, result: pd.DataFrame) -> list[Path]:
        """Plots of ``result`` written to ``output_dir``; the paths written."""
        return []

    def options(self) -> dict[str, Any]:
        """The analysis's own options (its ``__init__`` parameters beyond the common ones)."""
        parameters = inspect.signature(type(self).__init__).parameters
        return {
            key: getattr(self, key) for key in parameters if key not in BASE_PARAMETERS and hasattr(self, key)
        }

    def describe(self) -> dict[str, Any]:
        """What results.json records about this analysis."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "table_file": None if self.table_path is None else str(self.table_path),
            "images_path": None if self.images_path is None else str(self.images_path),
            "options": self.options(),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
