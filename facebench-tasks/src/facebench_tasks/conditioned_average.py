"""Average distance per condition (view changes, critical vs non-critical feature changes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from facebench.pairs import text_column
from facebench.task import BaseTask


class ConditionedAverageDistances(BaseTask):
    """Mean model distance for each condition of the pairs file.

    ``condition_column`` names the condition column (``"condition"`` by default; the seed lab's
    files call it ``"cond"``). With ``normalize`` (the default) distances are first divided by
    the largest absolute distance of the model-layer, so conditions compare across layers on a
    0..1 scale; when every distance is zero they are left as they are.

    Result: one row per condition, in the order the conditions first appear in the file, with
    columns ``Condition``, ``Mean Value``, ``Distance Metric``.
    """

    plot_columns: ClassVar[tuple[str, ...]] = ("Mean Value",)

    def __init__(
        self,
        name: str | None = None,
        *,
        condition_column: str = "condition",
        normalize: bool = True,
        **common: Any,
    ) -> None:
        self.condition_column = condition_column
        self.normalize = bool(normalize)
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

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        distances = self.pair_distances(pairs_distances_df)
        if self.normalize:
            largest = float(np.max(np.abs(distances)))
            if largest > 0:
                distances = distances / largest
        conditions = text_column(pairs_distances_df, self.condition_column, f"task {self.name!r} distances")
        means = pd.Series(distances, index=conditions.to_numpy()).groupby(level=0, sort=False).mean()
        return pd.DataFrame(
            {
                "Condition": means.index.astype(str),
                "Mean Value": means.to_numpy(dtype=float),
                "Distance Metric": self.metric.name,
            }
        )

    def plot(self, output_dir: Path, performances: pd.DataFrame, **kwargs: Any) -> list[Path]:
        """One bar plot of the mean value across models and layers per condition."""
        from facebench.plots import bar_plot
        from facebench.results import safe_filename

        written: list[Path] = []
        for condition, rows in performances.groupby("Condition", sort=False):
            written += bar_plot(
                rows,
                "Mean Value",
                Path(output_dir),
                title=f"{self.name} - {condition}: Mean Value",
                filename=safe_filename(f"{self.name}_{condition}_Mean_Value"),
            )
        return written
