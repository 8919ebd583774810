"""Headless plots of benchmark results: bars per model and layer, model-vs-human scatter, and
metric-against-layer-depth curves, with optional human reference bands.

Each plot is written as PNG and SVG (atomically) and the list of written paths is returned.
matplotlib is imported inside the functions (Agg backend), so importing this module is cheap.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from facebench.errors import DataError
from facebench.results import atomic_path, safe_filename
from facebench.textfiles import read_utf8

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PLOT_FORMATS = ("png", "svg")
MODEL_COLUMN = "Model Name"
LAYER_COLUMN = "Layer Name"
HUMAN_COLOR = "#555555"


@dataclass(frozen=True)
class HumanBand:
    """Human reference for one metric: a shaded ``low``-``high`` band and a ``median`` line
    (none when ``median`` is None, e.g. a noise ceiling). With no median and ``low == high`` it
    is a single reference value drawn as a dotted line (e.g. a probe's chance level)."""

    low: float
    median: float | None
    high: float
    label: str = "Humans"


def normalize_column_name(name: str) -> str:
    """Column names compare with runs of whitespace collapsed, none before a colon, ends stripped."""
    return re.sub(r"\s*:\s*", ": ", " ".join(str(name).split()))


@dataclass(frozen=True)
class HumanPercentiles:
    """Human percentiles per ``"Task: Metric"`` column, from a file shaped like
    ``human_percentiles.csv``: ``Model Name`` = Humans, ``Layer Name`` = percentile 0..100,
    one column per metric."""

    table: dict[str, dict[float, float]]  # normalised column -> percentile -> value
    source: str = ""

    @classmethod
    def from_csv(cls, path: str | Path) -> HumanPercentiles:
        import pandas as pd

        path = Path(path)
        if not path.is_file():
            raise DataError(f"human percentiles file {str(path)!r} does not exist")
        shape = "one row per percentile (Layer Name = 0..100) and one column per 'Task: Metric'"
        try:
            frame = pd.read_csv(io.StringIO(read_utf8(path, "human percentiles file", DataError)))
        except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
            reason = "it is empty" if isinstance(exc, pd.errors.EmptyDataError) else "it is not a CSV table"
            raise DataError(f"human percentiles file {str(path)!r}: {reason}; expected {shape}") from None
        if LAYER_COLUMN not in frame.columns:
            raise DataError(f"{str(path)!r}: no {LAYER_COLUMN!r} column; expected {shape}")
        if MODEL_COLUMN in frame.columns:
            frame = frame[frame[MODEL_COLUMN].astype(str).str.strip().str.lower() == "humans"]
            if frame.empty:
                raise DataError(f"{str(path)!r}: no row has {MODEL_COLUMN!r} = Humans; expected {shape}")
        percentiles = pd.to_numeric(frame[LAYER_COLUMN], errors="coerce")
        if percentiles.isna().any() or not percentiles.between(0, 100).all():
            raise DataError(f"{str(path)!r}: {LAYER_COLUMN!r} must hold percentiles (numbers 0..100)")
        table: dict[str, dict[float, float]] = {}
        for column in frame.columns:
            if column in (MODEL_COLUMN, LAYER_COLUMN):
                continue
            values = pd.to_numeric(frame[column], errors="coerce")
            bad = frame[column][values.isna() & frame[column].notna()]
            if not bad.empty:
                line = int(bad.index[0]) + 2
                raise DataError(
                    f"{str(path)!r}: column {column!r} holds {str(bad.iloc[0])!r} (line {line}), not a "
                    f"number; every value must be a number or empty"
                )
            points = {float(p): float(v) for p, v in zip(percentiles, values, strict=True) if pd.notna(v)}
            if points:
                table[normalize_column_name(column)] = points
        if not table:
            raise DataError(f"{str(path)!r}: no column holds a value; expected {shape}")
        return cls(table, str(path))

    def columns(self) -> list[str]:
        return sorted(self.table)

    def quantiles(self, column: str) -> tuple[list[float], list[float]] | None:
        """``column``'s tabulated percentiles and values, both ascending, or None if absent.

        A table whose values decrease somewhere between percentiles (quantile crossing, e.g.
        from rounding or small samples) is made monotone by sorting its values (monotone
        rearrangement, Chernozhukov, Fernández-Val & Galichon 2010); :meth:`is_monotone` says
        whether that happened.
        """
        points = self.table.get(normalize_column_name(column))
        if not points:
            return None
        return sorted(points), sorted(points.values())

    def is_monotone(self, column: str) -> bool:
        """Whether ``column``'s values never decrease as the percentile grows."""
        points = self.table.get(normalize_column_name(column)) or {}
        values = [points[p] for p in sorted(points)]
        return all(a <= b for a, b in pairwise(values))

    def band(self, column: str, low: float = 25.0, high: float = 75.0) -> HumanBand | None:
        """The ``low``-``high`` percentile band and median of ``column``, or None if absent.

        Percentiles between the tabulated ones are interpolated linearly on :meth:`quantiles`.
        """
        import numpy as np

        quantiles = self.quantiles(column)
        if quantiles is None:
            return None
        xs, ys = quantiles

        def at(q: float) -> float:
            return float(np.interp(q, xs, ys))

        label = f"Humans ({low:g}th–{high:g}th percentile)"
        return HumanBand(at(low), at(50.0), at(high), label)


def bar_plot(
    performances: pd.DataFrame,
    value_column: str,
    output_dir: str | Path,
    title: str,
    error_columns: tuple[str, str] | None = None,
    filename: str | None = None,
    *,
    ylabel: str | None = None,
    human_band: HumanBand | None = None,
) -> list[Path]:
    """Bars grouped by model, one bar per layer, coloured by model.

    ``error_columns`` names the lower and upper bounds of an interval (e.g. a bootstrap CI)
    drawn as error bars. ``human_band`` shades the human reference range.
    """
    import numpy as np

    _require_columns(performances, [MODEL_COLUMN, LAYER_COLUMN, value_column, *(error_columns or ())])
    frame = performances.reset_index(drop=True)
    models = list(dict.fromkeys(frame[MODEL_COLUMN].astype(str)))
    colors = _model_colors(models)
    positions: list[float] = []
    tick_labels: list[str] = []
    group_centres: list[float] = []
    x = 0.0
    rows_in_order = []
    for model in models:
        rows = frame[frame[MODEL_COLUMN].astype(str) == model]
        start = x
        for _, row in rows.iterrows():
            positions.append(x)
            tick_labels.append(str(row[LAYER_COLUMN]))
            rows_in_order.append(row)
            x += 1.0
        group_centres.append((start + x - 1.0) / 2.0)
        x += 0.8  # gap between models

    fig, ax = _new_figure(width=max(6.0, 0.45 * len(positions) + 2.5), height=4.8)
    values = np.array([float(row[value_column]) for row in rows_in_order])
    bar_colors = [colors[str(row[MODEL_COLUMN])] for row in rows_in_order]
    yerr = None
    if error_columns:
        low = np.array([float(row[error_columns[0]]) for row in rows_in_order])
        high = np.array([float(row[error_columns[1]]) for row in rows_in_order])
        yerr = np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])
    ax.bar(positions, values, color=bar_colors, yerr=yerr, capsize=3 if yerr is not None else 0, width=0.8)
    if len(positions) <= 24:
        tops = values if yerr is None else values + yerr[1]
        for pos, value, top in zip(positions, values, tops, strict=True):
            if math.isfinite(value):
                ax.annotate(
                    f"{value:.3g}",
                    (pos, top if value >= 0 else value),
                    textcoords="offset points",
                    xytext=(0, 3 if value >= 0 else -10),
                    ha="center",
                    fontsize=7,
                )
    ax.set_xticks(positions, tick_labels, rotation=45 if len(positions) > 3 else 0, ha="right", fontsize=8)
    ax.set_xlabel("Layer (grouped by model)")
    ax.set_ylabel(ylabel or value_column)
    ax.axhline(0.0, color="black", linewidth=0.6)
    if human_band is not None:
        _draw_human_band(ax, human_band)
    handles = [_patch(colors[m], m) for m in models]
    _finish(ax, title, handles)
    return save_figure(fig, output_dir, filename or safe_filename(f"{title} {value_column}"))


def scatter_plot(
    x: Sequence[float],
    y: Sequence[float],
    output_dir: str | Path,
    title: str,
    xlabel: str,
    ylabel: str,
    filename: str | None = None,
    *,
    fit_line: bool = True,
) -> list[Path]:
    """Points ``(x[i], y[i])`` (e.g. human vs model distance per pair) with a least-squares
    line and Pearson and Spearman correlations in the legend."""
    import numpy as np
    from scipy import stats

    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape:
        raise DataError(f"scatter_plot: x has {xs.size} values but y has {ys.size}")
    finite = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[finite], ys[finite]
    fig, ax = _new_figure(width=5.5, height=5.0)
    ax.scatter(xs, ys, s=18, alpha=0.7, color="#1f77b4", edgecolor="white", linewidth=0.4, label="pairs")
    handles = None
    if fit_line and xs.size >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:
        slope, intercept = np.polyfit(xs, ys, 1)
        grid = np.linspace(xs.min(), xs.max(), 50)
        pearson = stats.pearsonr(xs, ys).statistic
        spearman = stats.spearmanr(xs, ys).statistic
        ax.plot(
            grid,
            slope * grid + intercept,
            color="#d62728",
            linewidth=1.5,
            label=f"fit: Pearson r = {pearson:.2f}, Spearman ρ = {spearman:.2f}",
        )
        handles = ax.get_legend_handles_labels()[0]
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _finish(ax, title, handles, legend_inside=True)
    return save_figure(fig, output_dir, filename or safe_filename(title))


def layer_curve_plot(
    performances: pd.DataFrame,
    value_column: str,
    output_dir: str | Path,
    title: str,
    filename: str | None = None,
    *,
    group_column: str | None = None,
    ylabel: str | None = None,
    human_band: HumanBand | None = None,
) -> list[Path]:
    """``value_column`` against layer depth, one line per model (and per ``group_column``
    value, e.g. ``Condition``).

    Layers keep their order in ``performances`` (the order they were extracted). When every
    model has the same layers the x axis names them; otherwise it is the relative depth,
    0 for a model's first extracted layer and 1 for its last.
    """
    _require_columns(
        performances, [MODEL_COLUMN, LAYER_COLUMN, value_column, *([group_column] if group_column else [])]
    )
    frame = performances.reset_index(drop=True)
    models = list(dict.fromkeys(frame[MODEL_COLUMN].astype(str)))
    layer_lists = {
        model: list(
            dict.fromkeys(frame.loc[frame[MODEL_COLUMN].astype(str) == model, LAYER_COLUMN].astype(str))
        )
        for model in models
    }
    shared_layers = len({tuple(layers) for layers in layer_lists.values()}) == 1
    colors = _model_colors(models)
    groups = list(dict.fromkeys(frame[group_column].astype(str))) if group_column else [None]
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P"]

    fig, ax = _new_figure(width=7.0, height=4.8)
    for model in models:
        layers = layer_lists[model]
        for index, group in enumerate(groups):
            rows = frame[frame[MODEL_COLUMN].astype(str) == model]
            if group is not None:
                rows = rows[rows[group_column].astype(str) == group]
            by_layer = dict(
                zip(rows[LAYER_COLUMN].astype(str), rows[value_column].astype(float), strict=True)
            )
            xs, ys = [], []
            for depth, layer in enumerate(layers):
                if layer in by_layer:
                    xs.append(depth if shared_layers else depth / max(len(layers) - 1, 1))
                    ys.append(by_layer[layer])
            label = model if group is None else f"{model} – {group}"
            ax.plot(
                xs,
                ys,
                linestyle=styles[index % len(styles)],
                marker=markers[index % len(markers)],
                color=colors[model],
                label=label,
                markersize=5,
            )
    if shared_layers:
        layers = next(iter(layer_lists.values()))
        ax.set_xticks(
            range(len(layers)), layers, rotation=45 if len(layers) > 3 else 0, ha="right", fontsize=8
        )
        ax.set_xlabel("Layer (input → output)")
    else:
        ax.set_xlabel("Relative layer depth (0 = first extracted layer, 1 = last)")
    ax.set_ylabel(ylabel or value_column)
    if human_band is not None:
        _draw_human_band(ax, human_band)
    _finish(ax, title, None)
    return save_figure(fig, output_dir, filename or safe_filename(f"{title} {value_column} by layer"))


def save_figure(fig: Figure, output_dir: str | Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``stem.png`` and ``stem.svg`` in ``output_dir`` (atomically) and close it."""
    import matplotlib.pyplot as plt

    output = Path(output_dir)
    written = []
    try:
        for fmt in PLOT_FORMATS:
            target = output / f"{stem}.{fmt}"
            with atomic_path(target) as temporary:
                fig.savefig(temporary, format=fmt, dpi=150, bbox_inches="tight")
            written.append(target)
    finally:
        plt.close(fig)
    return written


def headless_pyplot() -> ModuleType:
    """``matplotlib.pyplot``, imported on first use, on the headless Agg backend (``force=False``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(min(width, 30.0), height), layout="constrained")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def _finish(ax: Axes, title: str, handles: list[Any] | None, legend_inside: bool = False) -> None:
    ax.set_title(title, fontsize=12)
    if handles is None:
        handles = ax.get_legend_handles_labels()[0]
    else:
        handles = handles + [h for h in ax.get_legend_handles_labels()[0] if h not in handles]
    if not handles:
        return
    if legend_inside:
        ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)
    else:
        ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _draw_human_band(ax: Axes, band: HumanBand) -> None:
    if band.median is None and band.low == band.high:  # one reference value: a dotted line
        ax.axhline(band.low, color="0.4", linestyle=":", linewidth=1.4, label=band.label)
        return
    ax.axhspan(band.low, band.high, color=HUMAN_COLOR, alpha=0.18, label=band.label, zorder=0)
    if band.median is not None:
        ax.axhline(band.median, color=HUMAN_COLOR, linestyle="--", linewidth=1.2, label="Humans (median)")


def _model_colors(models: list[str]) -> dict[str, Any]:
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    return {model: palette(index % 10) for index, model in enumerate(models)}


def _patch(color: Any, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def _require_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"cannot plot: missing column(s) {', '.join(map(repr, missing))}; "
            f"the table has {', '.join(map(repr, frame.columns))}"
        )
