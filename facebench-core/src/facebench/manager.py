"""Run many models on many tasks: embed each model's images once, score every layer on every
task, and export distances, performance tables, the unified summary, plots and results.json.

For each model, the union of its tasks' images goes through ONE :func:`facebench.engine.embed_images`
call (the engine de-duplicates and caches); then, for every layer and task,
:func:`facebench.engine.pair_distances` feeds :meth:`BaseTask.compute_task_performance`.
A model or task that fails is recorded in :attr:`MultiModelTaskManager.failures` and the
others go on.

Output folder (``export_path``)::

    results.json                        everything below, with configuration and provenance
    models_unified_results.csv          one row per model x layer, one column per "Task: Metric"
    performance/<task>.csv              the task's metrics, one row per model x layer (x condition)
    distances/<model>/<layer>/<task>.csv  the task's pairs with model_computed_distance
    plots/<task>/*.png, *.svg           the task's bar plots and metric-by-layer curves
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError, UnknownNameError
from facebench.plots import HumanPercentiles, layer_curve_plot
from facebench.results import (
    DISTANCE_COLUMN,
    RESULTS_JSON_FILE,
    UNIFIED_SUMMARY_FILE,
    metric_columns,
    safe_filename,
    unified_summary,
    write_csv_atomic,
)

if TYPE_CHECKING:
    import pandas as pd

    from facebench.model import BaseModel
    from facebench.store import EmbeddingStore
    from facebench.task import BaseTask

log = logging.getLogger(__name__)

LAYER_COLUMN = "Layer Name"
USER_CACHE = "user-cache"  # sentinel: the engine's default cache folder


@dataclass
class Failure:
    """Something that did not produce results, and why."""

    stage: str  # "embed", "task", "plot" or "export"
    error: str
    model: str | None = None
    task: str | None = None
    layer: str | None = None
    traceback: str = field(default="", repr=False)

    def where(self) -> str:
        parts = [
            f"{kind} {value!r}"
            for kind, value in (("model", self.model), ("task", self.task), ("layer", self.layer))
            if value
        ]
        return ", ".join(parts) or "run"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MultiModelTaskManager:
    """Models and tasks by name, their results, and the exports.

    ``cache_dir``: the engine's embedding cache folder; by default the user cache folder,
    ``None`` for a temporary one deleted by :meth:`close`. ``store`` overrides both.
    ``human_percentiles``: a file (or loaded :class:`HumanPercentiles`) whose bands are drawn
    on the metric-by-layer plots.
    """

    def __init__(
        self,
        models: BaseModel | Sequence[BaseModel] = (),
        tasks: BaseTask | Sequence[BaseTask] = (),
        batch_size: int = 32,
        *,
        cache_dir: str | Path | None = USER_CACHE,
        store: EmbeddingStore | None = None,
        num_workers: int | None = None,
        progress: bool = True,
        human_percentiles: str | Path | HumanPercentiles | None = None,
        plugin_sources: dict[str, dict[str, str]] | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.batch_size = int(batch_size)
        self.num_workers = num_workers
        self.progress = progress
        self.models: dict[str, BaseModel] = {}
        self.tasks: dict[str, BaseTask] = {}
        self.tasks_performance_dfs: dict[str, pd.DataFrame] = {}
        self.model_task_distances_dfs: dict[str, dict[str, pd.DataFrame]] = {}
        self.failures: list[Failure] = []
        self.written_files: list[Path] = []
        self.plugin_sources = dict(plugin_sources or {})
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.status = "not run"
        self.experiment: dict[str, Any] | None = None  # the experiment file, when run from one
        self._cache_dir = cache_dir
        self._store = store
        self._owns_store = store is None
        if isinstance(human_percentiles, str | Path):
            human_percentiles = HumanPercentiles.from_csv(human_percentiles)
        self.human_percentiles = human_percentiles
        self.add_tasks(tasks)
        self.add_models(models)

    # ------------------------------------------------------------------ set-up
    def add_models(self, models: BaseModel | Iterable[BaseModel]) -> None:
        """Add models; a name already used raises :class:`ConfigError`."""
        for model in _as_list(models):
            _add_unique(self.models, model, "model")
            self.model_task_distances_dfs.setdefault(model.name, {})

    def add_tasks(self, tasks: BaseTask | Iterable[BaseTask]) -> None:
        """Add tasks; a name already used raises :class:`ConfigError`."""
        for task in _as_list(tasks):
            _add_unique(self.tasks, task, "task")

    @property
    def store(self) -> EmbeddingStore:
        """The embedding store, created on first use."""
        if self._store is None:
            from facebench.store import EmbeddingStore

            self._store = (
                EmbeddingStore() if self._cache_dir == USER_CACHE else EmbeddingStore(self._cache_dir)
            )
        return self._store

    def close(self) -> None:
        """Close the store this manager created (a temporary one is deleted)."""
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> MultiModelTaskManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MultiModelTaskManager(models={list(self.models)}, tasks={list(self.tasks)})"

    # ------------------------------------------------------------------ running
    def run_task(self, model_name: str, task_name: str) -> pd.DataFrame:
        """Run one task with one model; return (and store) its performance rows.

        Errors propagate; :meth:`run_all_tasks_with_model` records them instead.
        """
        model = self._get(self.models, "model", model_name)
        task = self._get(self.tasks, "task", task_name)
        embeddings = self._embed(model, [task])
        return self._score(model, task, embeddings)

    def run_all_tasks_with_model(self, model_name: str) -> dict[str, pd.DataFrame]:
        """Embed the union of every task's images once, then score every task; failures are
        recorded in :attr:`failures`, not raised. Returns the performance rows per task."""
        model = self._get(self.models, "model", model_name)
        results: dict[str, pd.DataFrame] = {}
        try:
            embeddings = self._embed(model, list(self.tasks.values()))
        except Exception as exc:
            self._record("embed", exc, model=model_name)
            return results
        for task in self.tasks.values():
            try:
                results[task.name] = self._score(model, task, embeddings)
            except Exception as exc:
                self._record("task", exc, model=model_name, task=task.name)
        return results

    def run_all_tasks_all_models(
        self, export_path: str | Path | None = None, print_log: bool = False, plots: bool = True
    ) -> list[Failure]:
        """Run every model on every task and, with ``export_path``, export everything there.

        Results computed before an interruption (Ctrl-C) are still exported, and results.json
        says ``"status": "interrupted"``. Returns the failures (empty when all succeeded).
        """
        if print_log:
            _enable_console_log()
        self.started_at = datetime.now(UTC)
        self.status = "running"
        try:
            for model_name in list(self.models):
                log.info("model %s: %d task(s)", model_name, len(self.tasks))
                self.run_all_tasks_with_model(model_name)
            self.status = "completed with failures" if self.failures else "completed"
        except BaseException:
            self.status = "interrupted"
            raise
        finally:
            self.finished_at = datetime.now(UTC)
            if export_path is not None:
                self.export_all(export_path, plots=plots)
        for failure in self.failures:
            log.warning("FAILED %s (%s): %s", failure.where(), failure.stage, failure.error)
        return self.failures

    def _embed(self, model: BaseModel, tasks: Sequence[BaseTask]) -> Any:
        from facebench.engine import embed_images

        paths: dict[Path, None] = {}
        for task in tasks:
            img1, img2 = task.image_paths()
            paths.update(dict.fromkeys(img1))
            paths.update(dict.fromkeys(img2))
        log.info("model %s: embedding %d image(s)", model.name, len(paths))
        return embed_images(
            model,
            list(paths),
            store=self.store,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            progress=self.progress,
        )

    def _score(self, model: BaseModel, task: BaseTask, embeddings: Any) -> pd.DataFrame:
        """Distances and performance of ``task`` for every layer of ``model``; stores both."""
        import pandas as pd

        from facebench.engine import pair_distances

        img1, img2 = task.image_paths()
        distance_frames, performance_frames = [], []
        for layer in model.output_layers:
            distances = pair_distances(embeddings, layer, img1, img2, task.metric)
            pairs = task.pairs_df.copy()
            pairs[DISTANCE_COLUMN] = distances
            performance = task.compute_task_performance(pairs).copy()
            performance.insert(0, "Task Name", task.name)
            performance.insert(0, LAYER_COLUMN, layer)
            performance.insert(0, "Model Name", model.name)
            pairs.insert(0, LAYER_COLUMN, layer)
            distance_frames.append(pairs)
            performance_frames.append(performance)
        distances_df = pd.concat(distance_frames, ignore_index=True)
        performance_df = pd.concat(performance_frames, ignore_index=True)
        self.model_task_distances_dfs.setdefault(model.name, {})[task.name] = distances_df
        previous = self.tasks_performance_dfs.get(task.name)
        if previous is not None:
            previous = previous[previous["Model Name"] != model.name]
            performance_df = pd.concat([previous, performance_df], ignore_index=True)
        self.tasks_performance_dfs[task.name] = performance_df
        log.info("model %s, task %s: done (%d layer(s))", model.name, task.name, len(distance_frames))
        return performance_df[performance_df["Model Name"] == model.name].reset_index(drop=True)

    def _record(self, stage: str, exc: BaseException, **where: str | None) -> None:
        failure = Failure(
            stage=stage,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
            **where,
        )
        self.failures.append(failure)
        log.error("FAILED %s (%s): %s", failure.where(), stage, failure.error)

    @staticmethod
    def _get(items: dict[str, Any], kind: str, name: str) -> Any:
        if name not in items:
            from facebench.registry import unknown_name_message

            raise UnknownNameError(unknown_name_message(f"{kind} in this manager", name, sorted(items)))
        return items[name]

    # ------------------------------------------------------------------ exports
    def export_all(self, export_path: str | Path, plots: bool = True) -> list[Path]:
        """Every export below plus results.json; an export that fails is recorded as a failure."""
        export_path = Path(export_path)
        steps = [self.export_computed_metrics, self.export_unified_summary]
        steps.append(self.export_model_results_by_task if plots else self.export_performance_tables)
        for step in steps:
            try:
                step(export_path)
            except Exception as exc:
                self._record("export", exc)
        self.export_results_json(export_path)
        return self.written_files

    def export_computed_metrics(self, export_path: str | Path) -> list[Path]:
        """``distances/<model>/<layer>/<task>.csv``: each task's pairs with their distances."""
        written = []
        for model_name, by_task in self.model_task_distances_dfs.items():
            for task_name, frame in by_task.items():
                for layer, rows in frame.groupby(LAYER_COLUMN, sort=False):
                    target = (
                        Path(export_path)
                        / "distances"
                        / safe_filename(model_name)
                        / safe_filename(str(layer))
                        / f"{safe_filename(task_name)}.csv"
                    )
                    written.append(write_csv_atomic(rows.drop(columns=LAYER_COLUMN), target))
        self.written_files += written
        return written

    def export_performance_tables(self, export_path: str | Path) -> list[Path]:
        """``performance/<task>.csv``: one row per model x layer (x condition)."""
        written = [
            write_csv_atomic(frame, Path(export_path) / "performance" / f"{safe_filename(task_name)}.csv")
            for task_name, frame in self.tasks_performance_dfs.items()
        ]
        self.written_files += written
        return written

    def export_model_results_by_task(self, export_path: str | Path) -> list[Path]:
        """The performance tables plus, per task, its own plots and metric-by-layer curves
        (with human bands when :attr:`human_percentiles` has the column)."""
        written = self.export_performance_tables(export_path)
        for task_name, performance in self.tasks_performance_dfs.items():
            folder = Path(export_path) / "plots" / safe_filename(task_name)
            task = self.tasks[task_name]
            try:
                plots = task.plot(folder, performance, pairs_distances=self.distances_for_task(task_name))
                plots += self._layer_curves(task, performance, folder)
            except Exception as exc:
                self._record("plot", exc, task=task_name)
                continue
            self.written_files += plots
            written += plots
        return written

    def distances_for_task(self, task_name: str) -> pd.DataFrame | None:
        """Every model's pair distances for one task: ``Model Name``, ``Layer Name``, the pairs
        file's columns and ``model_computed_distance``; None before any model ran it."""
        import pandas as pd

        frames = [
            by_task[task_name].assign(**{"Model Name": model}).pipe(_model_first)
            for model, by_task in self.model_task_distances_dfs.items()
            if task_name in by_task
        ]
        return pd.concat(frames, ignore_index=True) if frames else None

    def _layer_curves(self, task: BaseTask, performance: pd.DataFrame, folder: Path) -> list[Path]:
        layers_per_model = performance.groupby("Model Name")[LAYER_COLUMN].nunique()
        if layers_per_model.max() < 2:
            return []
        columns = [c for c in (task.plot_columns or metric_columns(performance)) if c in performance.columns]
        has_conditions = "Condition" in performance.columns and performance["Condition"].notna().any()
        written: list[Path] = []
        for column in columns:
            if performance[column].isna().all():
                continue
            band = None
            if self.human_percentiles is not None and not has_conditions:
                band = self.human_percentiles.band(f"{task.name}: {column}")
            written += layer_curve_plot(
                performance,
                column,
                folder,
                title=f"{task.name}: {column} by layer",
                filename=safe_filename(f"{task.name}_{column}_by_layer"),
                group_column="Condition" if has_conditions else None,
                human_band=band,
            )
        return written

    def export_unified_summary(self, export_path: str | Path) -> Path:
        """``models_unified_results.csv``: one row per model x layer, a column per "Task: Metric"."""
        path = write_csv_atomic(
            unified_summary(self.tasks_performance_dfs), Path(export_path) / UNIFIED_SUMMARY_FILE
        )
        self.written_files.append(path)
        return path

    def export_results_json(self, export_path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """``results.json``: metrics, configuration and provenance (see :mod:`facebench.results`)."""
        from facebench.results import build_results_document, write_json_atomic

        target = Path(export_path) / RESULTS_JSON_FILE
        document = build_results_document(self, export_path=Path(export_path), extra=extra)
        return write_json_atomic(target, document)

    # ------------------------------------------------------------------ summary
    def failure_report(self) -> str:
        """A readable list of the failures, or an empty string."""
        if not self.failures:
            return ""
        lines = [f"{len(self.failures)} failure(s):"]
        lines += [f"  - {f.where()} [{f.stage}]: {f.error}" for f in self.failures]
        return "\n".join(lines)


def _as_list(items: Any) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, list | tuple):
        return list(items)
    return [items]


def _add_unique(into: dict[str, Any], item: Any, kind: str) -> None:
    name = getattr(item, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"every {kind} needs a non-empty name; got {item!r}")
    if name in into:
        raise ConfigError(
            f"two {kind}s are named {name!r}; {kind} names must be unique because results are "
            f"keyed by them. Give one of them another name (name=...)."
        )
    into[name] = item


def _model_first(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["Model Name", *[c for c in frame.columns if c != "Model Name"]]]


def _enable_console_log() -> None:
    if not any(getattr(h, "_facebench", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler._facebench = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
