"""How human-like is each model and layer: its place on the human distribution, and a ranking
of models across tasks.

Human reference for a result column (``"Task: Metric"`` or ``"Task - Condition: Metric"``):

* a **percentile table** (:class:`facebench.plots.HumanPercentiles`, the lab's
  ``human_percentiles.csv``): the human quantile function ``Q`` is the linear interpolation of
  the tabulated percentiles (made monotone by sorting when the table's values cross, see
  :meth:`~facebench.plots.HumanPercentiles.quantiles`). Centre = ``Q(50)``, band =
  ``Q(25)``-``Q(75)``, spread = the interquartile range ``Q(75) - Q(25)``. A model value's
  *percentile* is ``Q``'s inverse (the middle of a flat stretch); outside the tabulated range
  it is reported as below the lowest / above the highest tabulated percentile.
* a **noise ceiling** (the RSA task's ``Noise Ceiling Lower`` / ``Noise Ceiling Upper`` next to
  ``RSA Score``) when no percentile table covers the column: band = the ceiling, centre = its
  midpoint, spread = its width. No percentile is defined.

**Distance** of a value ``v`` from the humans: ``|v - centre| / spread`` (0 at the human median;
in human-IQR units, or ceiling widths). Per model, layer and task, the task's distance is the
mean over the task's columns with a reference (its conditions and headline metrics). A model's
**most human-like layer** on a task is the layer with the smallest task distance (the first in
extraction order on a tie). A model's **aggregate** is the mean, over every task with human
reference data, of its most human-like layer's task distance; models are ranked by it, smallest
first (values equal to 1e-9 share a rank). A model without a value on one of those tasks is not ranked,
and the tasks it lacks are named.

The layer is chosen on the same data it is scored on (in-sample selection), which flatters
every model's aggregate, most of all models with many layers; read the ranking as descriptive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from facebench.plots import HumanPercentiles, normalize_column_name
from facebench.results import unified_column

PERCENTILES = "percentiles"
NOISE_CEILING = "noise ceiling"
RSA_SCORE = "RSA Score"
CEILING_LOWER = "Noise Ceiling Lower"
CEILING_UPPER = "Noise Ceiling Upper"
BAND_LOW, BAND_HIGH = 25.0, 75.0


@dataclass(frozen=True)
class Reference:
    """The human reference of one result column."""

    kind: str  # PERCENTILES or NOISE_CEILING
    low: float
    centre: float
    high: float
    percentiles: tuple[float, ...] = ()  # ascending, with ``values``: the quantile function
    values: tuple[float, ...] = ()

    @property
    def spread(self) -> float:
        return self.high - self.low

    def distance(self, value: float) -> float:
        """``|value - centre| / spread``."""
        return abs(value - self.centre) / self.spread

    def placement(self, value: float) -> str:
        """``"below"``, ``"inside"`` or ``"above"`` the band (bounds count as inside)."""
        if value < self.low:
            return "below"
        return "above" if value > self.high else "inside"

    def percentile(self, value: float) -> tuple[float, str] | None:
        """The human percentile of ``value`` and a qualifier: ``""``, ``"<"`` (below the lowest
        tabulated percentile, which is returned) or ``">"``; None for a noise ceiling."""
        if self.kind != PERCENTILES:
            return None
        ps, vs = self.percentiles, self.values
        if value < vs[0]:
            return ps[0], "<"
        if value > vs[-1]:
            return ps[-1], ">"
        points = list(zip(ps, vs, strict=True))
        hits = [p for p, v in points if v == value]
        for (p0, v0), (p1, v1) in pairwise(points):
            if v0 < value < v1:
                hits.append(p0 + (value - v0) / (v1 - v0) * (p1 - p0))
        return (min(hits) + max(hits)) / 2, ""


def percentile_reference(percentiles: Sequence[float], values: Sequence[float]) -> Reference | str:
    """A :data:`PERCENTILES` reference from ascending percentiles and values, or why not."""
    import numpy as np

    if not percentiles or percentiles[0] > BAND_LOW or percentiles[-1] < BAND_HIGH:
        return f"the table does not cover the {BAND_LOW:g}th to {BAND_HIGH:g}th percentiles"
    low, centre, high = (float(np.interp(q, percentiles, values)) for q in (BAND_LOW, 50.0, BAND_HIGH))
    if not high > low:
        return "the human interquartile range is zero"
    return Reference(PERCENTILES, low, centre, high, tuple(percentiles), tuple(values))


def ceiling_reference(lower: float, upper: float) -> Reference | str:
    """A :data:`NOISE_CEILING` reference, or why not."""
    if not (math.isfinite(lower) and math.isfinite(upper)) or not upper > lower:
        return f"the noise ceiling [{lower}, {upper}] has no width"
    return Reference(NOISE_CEILING, lower, (lower + upper) / 2, upper)


@dataclass(frozen=True)
class Placement:
    """One model-layer value on the human distribution."""

    task: str
    model: str
    layer: str
    column: str  # "Task: Metric" or "Task - Condition: Metric"
    value: float
    reference: Reference

    @property
    def distance(self) -> float:
        return self.reference.distance(self.value)

    @property
    def placement(self) -> str:
        return self.reference.placement(self.value)

    @property
    def percentile(self) -> tuple[float, str] | None:
        return self.reference.percentile(self.value)


@dataclass(frozen=True)
class TaskPart:
    """A model's most human-like layer on a task and that layer's task distance."""

    task: str
    model: str
    layer: str
    distance: float
    placements: tuple[Placement, ...]


@dataclass
class RankedModel:
    model: str
    rank: int | None  # None: not ranked
    aggregate: float | None
    parts: dict[str, TaskPart]  # task -> most human-like layer
    missing: list[str] = field(default_factory=list)  # tasks with reference but no value


@dataclass
class HumanLikeness:
    placements: list[Placement]
    ranking: list[RankedModel]
    tasks_with_reference: list[str]
    tasks_without_reference: list[str]
    notes: list[str]

    @property
    def available(self) -> bool:
        return bool(self.tasks_with_reference)


def assess(
    records: Iterable[Mapping[str, Any]],
    human: HumanPercentiles | None = None,
    headline: Mapping[str, Sequence[str]] | None = None,
    human_columns: Mapping[str, Mapping[str, str]] | None = None,
) -> HumanLikeness:
    """Place every result on its human reference and rank the models.

    ``records``: results.json ``metrics`` entries (``task``, ``model``, ``layer``,
    ``condition``, ``values``). ``headline``: per task, the metric columns that count (a
    task not in it, or with none, counts every metric that has a reference).
    ``human_columns``: per task, metric -> the human table's name for it where they differ
    (the task's ``human_columns``: ``{"Cross-Validated Accuracy": "Accuracy"}``).
    """
    headline = headline or {}
    human_columns = human_columns or {}
    records = list(records)
    tasks = list(dict.fromkeys(str(r["task"]) for r in records))
    notes: list[str] = []
    references: dict[str, Reference | None] = {}  # normalised column -> reference (None: unusable)
    placements: list[Placement] = []
    for record in records:
        task, values = str(record["task"]), record.get("values") or {}
        condition = record.get("condition")
        for metric, value in values.items():
            column = unified_column(task, metric, condition)
            if headline.get(task) and metric not in headline[task]:
                if human is not None and human.quantiles(column) is not None:
                    note = f"{column}: has human data but is not a headline metric of its task; not used"
                    if note not in notes:
                        notes.append(note)
                continue
            human_column = unified_column(task, human_columns.get(task, {}).get(metric, metric), condition)
            key = normalize_column_name(human_column)
            reference = _reference(key, human_column, metric, values, human, references, notes)
            if reference is None or not _finite(value):
                continue
            placements.append(
                Placement(task, str(record["model"]), str(record["layer"]), column, float(value), reference)
            )
    with_reference = [t for t in tasks if any(p.task == t for p in placements)]
    ranking = _rank(placements, with_reference, records)
    return HumanLikeness(
        placements, ranking, with_reference, [t for t in tasks if t not in with_reference], notes
    )


def _reference(
    key: str,
    column: str,
    metric: str,
    values: Mapping[str, Any],
    human: HumanPercentiles | None,
    cache: dict[str, Reference | None],
    notes: list[str],
) -> Reference | None:
    quantiles = human.quantiles(column) if human is not None else None
    if quantiles is not None:
        if key not in cache:
            made = percentile_reference(*quantiles)
            cache[key] = made if isinstance(made, Reference) else None
            if isinstance(made, str):
                notes.append(f"{column}: not used, {made}")
            elif not human.is_monotone(column):  # type: ignore[union-attr]
                notes.append(
                    f"{column}: the human table's values decrease between some percentiles; "
                    "they were sorted before use (monotone rearrangement)"
                )
        return cache[key]
    if metric == RSA_SCORE and _finite(values.get(CEILING_LOWER)) and _finite(values.get(CEILING_UPPER)):
        made = ceiling_reference(float(values[CEILING_LOWER]), float(values[CEILING_UPPER]))
        if isinstance(made, str):
            note = f"{column}: not used, {made}"
            if note not in notes:
                notes.append(note)
            return None
        return made
    return None


def _rank(
    placements: list[Placement], tasks: list[str], records: list[Mapping[str, Any]]
) -> list[RankedModel]:
    by_cell: dict[tuple[str, str, str], list[Placement]] = {}
    for placement in placements:
        by_cell.setdefault((placement.model, placement.task, placement.layer), []).append(placement)
    columns_per_task = {t: {p.column for p in placements if p.task == t} for t in tasks}
    models = list(dict.fromkeys(str(r["model"]) for r in records))
    ranked: list[RankedModel] = []
    for model in models:
        parts: dict[str, TaskPart] = {}
        for task in tasks:
            best: TaskPart | None = None
            for (m, t, layer), cell in by_cell.items():  # insertion order = extraction order
                if m != model or t != task or {p.column for p in cell} != columns_per_task[task]:
                    continue
                distance = sum(p.distance for p in cell) / len(cell)
                if best is None or distance < best.distance:
                    best = TaskPart(task, model, layer, distance, tuple(cell))
            if best is not None:
                parts[task] = best
        missing = [t for t in tasks if t not in parts]
        aggregate = None if missing or not tasks else sum(p.distance for p in parts.values()) / len(tasks)
        ranked.append(RankedModel(model, None, aggregate, parts, missing))
    scored = sorted((m for m in ranked if m.aggregate is not None), key=lambda m: m.aggregate)  # type: ignore[arg-type,return-value]
    for index, model in enumerate(scored):
        previous = scored[index - 1] if index else None
        tied = previous is not None and math.isclose(previous.aggregate, model.aggregate, rel_tol=1e-9)  # type: ignore[arg-type]
        model.rank = previous.rank if tied else index + 1  # type: ignore[union-attr]
    return scored + [m for m in ranked if m.aggregate is None]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
