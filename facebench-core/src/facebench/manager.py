"""Run many models on many tasks: embed each model's images once, score every layer on every
task, and export distances, performance tables, the unified summary, plots and results.json.

For each model, the union of its tasks' (and analyses') images goes through ONE
:func:`facebench.engine.embed_images` call (the engine de-duplicates and caches); then, for
every layer and task, the manager calls the task's one evaluation method,
:meth:`BaseTask.evaluate`, with a :class:`facebench.layer_view.LayerView` over that layer's
embeddings of the task's images (pair tasks turn it into pair distances and
:meth:`BaseTask.compute_task_performance`). After every model is embedded, each analysis
(:class:`facebench.analysis.BaseAnalysis`, e.g. CKA across models) runs on views of every
model-layer, reading only the store. A model, task or analysis that fails is recorded in
:attr:`MultiModelTaskManager.failures` and the others go on.

Output folder (``export_path``)::

    results.json                        everything below, with configuration and provenance
    models_unified_results.csv          one row per model x layer, one column per "Task: Metric"
    performance/<task>.csv              the task's metrics, one row per model x layer (x condition)
    distances/<model>/<layer>/<task>.csv  the task's pairs with model_computed_distance
    plots/<task>/*.png, *.svg           the task's bar plots and metric-by-layer curves
    analyses/<analysis>.csv             each analysis's tidy table
    plots/analyses/<analysis>/*.png, *.svg  its plots
    report.html                         one self-contained page of all of it (facebench.report)

The folder always holds one whole run: a run is written beside it and swapped in at the end
(:mod:`facebench.runfolder`, which also says where an interrupted run goes).
"""

from __future__ import annotations

import logging
import operator
import os
import re
import sys
import traceback
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError, DataError, UnknownNameError
from facebench.executors import Executor, resolve_executor
from facebench.interrupt import sigterm_as_interrupt
from facebench.plots import HumanPercentiles, layer_curve_plot
from facebench.results import (
    RESULTS_JSON_FILE,
    UNIFIED_SUMMARY_FILE,
    check_distinct_file_names,
    metric_columns,
    safe_filename,
    unified_summary,
    write_csv_atomic,
)

if TYPE_CHECKING:
    import pandas as pd

    from facebench.analysis import BaseAnalysis
    from facebench.engine import Embeddings
    from facebench.model import BaseModel
    from facebench.store import EmbeddingStore
    from facebench.task import BaseTask

log = logging.getLogger(__name__)

LAYER_COLUMN = "Layer Name"
USER_CACHE = "user-cache"  # sentinel: the engine's default cache folder


@dataclass
class Failure:
    """Something that did not produce results, and why."""

    stage: str  # "embed", "task", "analysis", "run", "plot", "export" or "report"
    error: str
    model: str | None = None
    task: str | None = None
    layer: str | None = None
    traceback: str = field(default="", repr=False)
    analysis: str | None = None

    def where(self) -> str:
        parts = [
            f"{kind} {value!r}"
            for kind, value in (
                ("model", self.model),
                ("task", self.task),
                ("analysis", self.analysis),
                ("layer", self.layer),
            )
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
    on the metric-by-layer plots. ``executor``: who embeds (:mod:`facebench.executors`; a
    registered name or an instance, default ``local``). ``data_path``: ``auto``, ``cpu`` or
    ``device`` (:mod:`facebench.datapath`); ``channels_last``: CNNs in channels-last memory
    format; ``torch_compile``: each network's forward compiled with ``torch.compile``. ``analyses``
    run after every model is embedded.
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
        executor: Executor | str | None = None,
        data_path: str = "auto",
        analyses: BaseAnalysis | Sequence[BaseAnalysis] = (),
        channels_last: bool = False,
        torch_compile: bool = False,
    ) -> None:
        self.batch_size = _whole_number(batch_size, "batch_size", 1)
        self.num_workers = None if num_workers is None else _whole_number(num_workers, "num_workers", 0)
        self.progress = progress
        self.executor = resolve_executor(executor)
        self.data_path = data_path
        self.channels_last = channels_last
        self.torch_compile = torch_compile
        self.data_paths: dict[str, str] = {}  # model name -> the data path its images took
        self.models: dict[str, BaseModel] = {}
        self.tasks: dict[str, BaseTask] = {}
        self.analyses: dict[str, BaseAnalysis] = {}
        self.analysis_results: dict[str, pd.DataFrame] = {}
        self.embeddings: dict[str, Embeddings] = {}  # model name -> its embeddings in the store
        self.tasks_performance_dfs: dict[str, pd.DataFrame] = {}
        self.model_task_distances_dfs: dict[str, dict[str, pd.DataFrame]] = {}
        self.failures: list[Failure] = []
        self.written_files: list[Path] = []
        self.plugin_sources = dict(plugin_sources or {})
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.status = "not run"
        self._stopped_by: BaseException | None = None  # an error that ended the run early
        self.output_folder: Path | None = None  # where export_all put the run
        self.experiment: dict[str, Any] | None = None  # the experiment file, when run from one
        self._cache_dir = cache_dir
        self._store = store
        self._owns_store = store is None
        if isinstance(human_percentiles, str | Path):
            human_percentiles = HumanPercentiles.from_csv(human_percentiles)
        self.human_percentiles = human_percentiles
        self.add_tasks(tasks)
        self.add_models(models)
        for analysis in _as_list(analyses):
            _add_unique(self.analyses, analysis, "analysis")

    # ------------------------------------------------------------------ set-up
    def add_models(self, models: BaseModel | Iterable[BaseModel]) -> None:
        """Add models; a name already used raises :class:`ConfigError`, and so does a bare
        ``nn.Module`` (:func:`facebench.wrap` makes it a model)."""
        from facebench.wrapped import require_model

        for model in map(require_model, _as_list(models)):
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
        if embeddings.failed_layers:
            raise DataError("; ".join(embeddings.failed_layers.values()))
        return self._score(model, task, embeddings)

    def run_all_tasks_with_model(self, model_name: str) -> dict[str, pd.DataFrame]:
        """Embed the union of every task's images once, then score every task; failures are
        recorded in :attr:`failures`, not raised. Returns the performance rows per task."""
        model = self._get(self.models, "model", model_name)
        results: dict[str, pd.DataFrame] = {}
        try:
            embeddings, unusable = self._embed_usable(model)
        except Exception as exc:
            self._record("embed", exc, model=model_name)
            return results
        self.embeddings[model_name] = embeddings
        for layer, message in embeddings.failed_layers.items():  # NaN/inf: that layer only
            self._record("embed", DataError(message), model=model_name, layer=layer)
        for task in self.tasks.values():
            try:
                used = [path for path in task.embedded_images() if path in unusable]
                skipped = model.skipped_images({path: unusable[path] for path in used})
                scored = task.without_images(skipped) if skipped else task
                used = [path for path in used if path not in skipped]
                if used:
                    shown = "; ".join(unusable[path] for path in used[:3])
                    more = f" (and {len(used) - 3} more)" if len(used) > 3 else ""
                    raise DataError(
                        f"model {model_name!r} could not embed {len(used)} of this task's images: "
                        f"{shown}{more}"
                    )
                results[task.name] = self._score(model, scored, embeddings)
            except Exception as exc:
                self._record("task", exc, model=model_name, task=task.name)
        return results

    def run_all_tasks_all_models(
        self, export_path: str | Path | None = None, print_log: bool = False, plots: bool = True
    ) -> list[Failure]:
        """Run every model on every task and, with ``export_path``, export everything there.

        :meth:`check_before_run` runs first. Results computed before an interruption (Ctrl-C,
        or SIGTERM while this runs in the main thread) are still exported, results.json says
        ``"status": "interrupted"``, and the exception (re-raised) carries a note saying where
        they are. Returns the failures (empty when all succeeded); failures are not logged
        (:meth:`failure_report` lists them), so each is printed once.
        """
        if print_log:
            _enable_console_log()
        self.check_before_run(export_path)
        self.started_at = datetime.now(UTC)
        self.status = "running"
        try:
            with sigterm_as_interrupt():
                for model_name in list(self.models):
                    log.info("model %s: %d task(s)", model_name, len(self.tasks))
                    self.run_all_tasks_with_model(model_name)
                self.run_analyses()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                self.status = "interrupted"
            else:
                self._stopped_by = exc
                self._record("run", exc)
            self._finish(export_path, plots)
            if self.output_folder is not None:
                exc.add_note(f"results finished so far are in {self.output_folder}")
            raise
        self._finish(export_path, plots)
        return self.failures

    def check_before_run(self, export_path: str | Path | None = None) -> None:
        """What can be checked before any model is built: the output folder (not a file, not a
        folder of other things, writable: :func:`facebench.runfolder.check_output_folder`), that
        every image decodes (:func:`facebench.imagecheck.check_images_decode`, all bad files
        listed), that the cache can be written (:meth:`check_cache_writable`), that each model
        brings them to one size (:meth:`check_input_sizes`), that each ``weights_path`` fits its
        network (:meth:`BaseModel.check_weights_before_building`, on the meta device) and that
        every requested layer exists (:meth:`check_layers_before_building`).
        Raises :class:`ConfigError`, :class:`DataError`, :class:`WeightsError` or
        :class:`UnknownNameError`."""
        from facebench.imagecheck import check_images_decode
        from facebench.runfolder import check_output_folder

        if export_path is not None:
            check_output_folder(export_path)
        self.check_cache_writable()
        check_images_decode(self.image_paths(), progress=self.progress)
        self.check_input_sizes()
        for model in self.models.values():
            model.check_weights_before_building()
        self.check_layers_before_building()

    def check_cache_writable(self) -> None:
        """The embedding cache folder can be written (a temporary one always can)."""
        from facebench.filesystem import check_writable_folder

        if self._store is None and self._cache_dir is None:
            return
        store = self.store
        problem = None if store.temporary else check_writable_folder(store.root)
        if problem:
            raise ConfigError(
                f"cannot write to the embedding cache {store.root}: {problem}; choose another cache "
                f"folder with --cache-dir DIR (cache_dir = ... in an experiment file), or run with "
                f"--no-cache (cache = false)"
            )

    def check_input_sizes(self) -> None:
        """Every model whose preprocessing keeps the photos' own shape (``crop=none``) brings
        the run's images to one size (:func:`facebench.sizecheck.check_one_input_size`)."""
        from facebench.model import BaseModel
        from facebench.sizecheck import check_one_input_size

        paths = self.image_paths()
        for model in self.models.values():
            own_steps = model.preprocess_function is not None or getattr(model, "align", "none") != "none"
            if own_steps or type(model).image_step is not BaseModel.image_step:
                continue
            try:
                preprocessing = model.preprocessing
            except Exception:  # found and recorded when the model runs
                continue
            check_one_input_size(model.name, preprocessing, paths)

    def check_layers_before_building(self) -> None:
        """Every model's requested layers exist (:class:`UnknownNameError` otherwise), run once
        per pass and give one output per image, checked on its network built on the meta device
        (:meth:`BaseModel.check_layers_before_building`), so no model has run yet."""
        for model in self.models.values():
            if model.extract_layers:
                model.check_layers_before_building()

    def image_paths(self) -> list[Path]:
        """Every image of the run's tasks and analyses, once each."""
        paths: dict[Path, None] = {}
        for task in self.tasks.values():
            paths.update(dict.fromkeys(task.embedded_images()))
        for analysis in self.analyses.values():
            paths.update(dict.fromkeys(analysis.image_paths()))
        return list(paths)

    def _finish(self, export_path: str | Path | None, plots: bool) -> None:
        self.finished_at = datetime.now(UTC)
        self.decide_status()
        if export_path is not None:
            self.export_all(export_path, plots=plots)

    def decide_status(self) -> str:
        """The run's status from what happened, decided again after every file is written, so
        results.json and the exit code always agree: ``interrupted`` stays; ``export failed`` when
        a file could not be written; ``failed`` when the run stopped on an error or has no result
        at all; ``completed with failures`` when anything else failed; ``completed`` otherwise."""
        if self.status == "interrupted":
            return self.status
        if any(failure.stage == "export" for failure in self.failures):
            self.status = "export failed"
        elif self._stopped_by is not None or not (self.tasks_performance_dfs or self.analysis_results):
            self.status = "failed"
        else:
            self.status = "completed with failures" if self.failures else "completed"
        return self.status

    def _embed_usable(self, model: BaseModel) -> tuple[Embeddings, dict[Path, str]]:
        """:meth:`_embed` over every image of the run. An image the model cannot take (a
        :class:`DataError` naming it: a file changed since :meth:`check_before_run`, or
        preprocessing that refuses it) is left out and embedding resumes from the store, so
        only the tasks using it fail. Returns the embeddings and the left-out images' errors."""
        tasks, analyses = list(self.tasks.values()), list(self.analyses.values())
        unusable: dict[Path, str] = {}
        while True:
            try:
                return self._embed(model, tasks, analyses, exclude=unusable), unusable
            except DataError as exc:
                message = str(exc)
                named = [p for p in self.image_paths() if p not in unusable and _names_file(message, p)]
                if not named:
                    raise
                log.info("model %s: left out %d image(s) it cannot take", model.name, len(named))
                unusable.update(dict.fromkeys(named, message))

    def _embed(
        self,
        model: BaseModel,
        tasks: Sequence[BaseTask],
        analyses: Sequence[BaseAnalysis] = (),
        exclude: Collection[Path] = (),
    ) -> Any:
        from facebench.engine import embed_images

        paths: dict[Path, None] = {}
        for task in tasks:
            paths.update(dict.fromkeys(task.embedded_images()))
        for analysis in analyses:
            paths.update(dict.fromkeys(analysis.image_paths()))
        for path in exclude:
            paths.pop(path, None)
        embeddings = embed_images(
            model,
            list(paths),
            store=self.store,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            progress=self.progress,
            executor=self.executor,
            data_path=self.data_path,
            channels_last=self.channels_last,
            torch_compile=self.torch_compile,
        )
        if embeddings.computed:
            computed, cached = embeddings.computed, embeddings.cached
            log.info("model %s: embedded %d image(s), %d from cache", model.name, computed, cached)
        else:
            log.info("model %s: %d image(s) from cache", model.name, embeddings.cached)
        self.data_paths[model.name] = embeddings.data_path
        return embeddings

    def _score(self, model: BaseModel, task: BaseTask, embeddings: Any) -> pd.DataFrame:
        """``task.evaluate`` for every layer of ``model``; stores the performance and distances."""
        import pandas as pd

        from facebench.layer_view import LayerView

        names = task.image_names()
        paths = [task.images_path / name for name in names]
        distance_frames, performance_frames = [], []
        for layer in embeddings.layers:  # a failed layer is recorded once, at embedding
            result = task.evaluate(LayerView(embeddings, layer, paths, names))
            performance = result.performance.copy()
            performance.insert(0, "Task Name", task.name)
            performance.insert(0, LAYER_COLUMN, layer)
            performance.insert(0, "Model Name", model.name)
            performance_frames.append(performance)
            if result.distances is not None:
                pairs = result.distances.copy()
                pairs.insert(0, LAYER_COLUMN, layer)
                distance_frames.append(pairs)
        if not performance_frames:
            raise DataError(f"model {model.name!r}: no layer left to score (each failed at embedding)")
        performance_df = pd.concat(performance_frames, ignore_index=True)
        if distance_frames:
            distances_df = pd.concat(distance_frames, ignore_index=True)
            self.model_task_distances_dfs.setdefault(model.name, {})[task.name] = distances_df
        previous = self.tasks_performance_dfs.get(task.name)
        if previous is not None:
            previous = previous[previous["Model Name"] != model.name]
            performance_df = pd.concat([previous, performance_df], ignore_index=True)
        self.tasks_performance_dfs[task.name] = performance_df
        log.info("model %s, task %s: done (%d layer(s))", model.name, task.name, len(performance_frames))
        return performance_df[performance_df["Model Name"] == model.name].reset_index(drop=True)

    def run_analyses(self) -> dict[str, pd.DataFrame]:
        """Run every analysis on views of every embedded model-layer (failures are recorded).

        An analysis reads its own images table's images, or else every image of the run's tasks.
        """
        from facebench.layer_view import LayerView

        task_paths: dict[Path, None] = {}
        for task in self.tasks.values():
            task_paths.update(dict.fromkeys(task.embedded_images()))
        for analysis in self.analyses.values():
            paths = analysis.image_paths() or list(task_paths)
            names = analysis.image_names() or [str(path) for path in paths]
            try:
                if not self.embeddings:
                    raise ConfigError(f"analysis {analysis.name!r}: no model was embedded")
                views = {
                    (model_name, layer): LayerView(embeddings, layer, paths, names)
                    for model_name, embeddings in self.embeddings.items()
                    for layer in embeddings.layers
                }
                log.info("analysis %s: %d model-layer(s), %d image(s)", analysis.name, len(views), len(paths))
                self.analysis_results[analysis.name] = analysis.run(views)
            except Exception as exc:
                self._record("analysis", exc, analysis=analysis.name)
        return self.analysis_results

    def _record(self, stage: str, exc: BaseException, **where: str | None) -> None:
        failure = Failure(
            stage=stage,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
            **where,
        )
        self.failures.append(failure)
        log.debug("FAILED %s (%s): %s", failure.where(), stage, failure.error)  # listed once, at the end

    @staticmethod
    def _get(items: dict[str, Any], kind: str, name: str) -> Any:
        if name not in items:
            from facebench.registry import unknown_name_message

            raise UnknownNameError(unknown_name_message(f"{kind} in this manager", name, sorted(items)))
        return items[name]

    # ------------------------------------------------------------------ exports
    def export_all(self, export_path: str | Path, plots: bool = True) -> list[Path]:
        """Every export below plus results.json and the report, written into a fresh folder
        beside ``export_path`` and then swapped in (:mod:`facebench.runfolder`), so the output
        folder always holds one whole run. An export that fails (disk full, read-only: the
        message names the file) is recorded as a failure and makes the status ``export
        failed``; such a run, like an interrupted one, never replaces a complete run.
        :attr:`output_folder` says where the run's files ended up."""
        from facebench.runfolder import RunFolder

        run_folder = RunFolder(export_path, runs_only=True)
        try:
            staging = run_folder.start()
        except OSError as exc:
            self._record("export", exc)
            self.decide_status()
            return []
        first_failure = len(self.failures)
        steps = [self.export_computed_metrics, self.export_unified_summary]
        steps.append(self.export_model_results_by_task if plots else self.export_performance_tables)
        steps.append(self.export_analyses if plots else self.export_analysis_tables)
        for step in steps:
            try:
                step(staging)
            except Exception as exc:
                self._record("export", exc)
        self.decide_status()
        try:
            self.export_results_json(staging)
            self.export_report(staging)
        except OSError as exc:
            self._record("export", exc)
            self.decide_status()
        try:
            self.output_folder = run_folder.finish(self.status)
        except OSError as exc:
            self._record("export", exc)
            self.output_folder = staging
        for failure in self.failures[first_failure:]:  # name the folder the user gave
            failure.error = failure.error.replace(str(staging), str(export_path))
            failure.traceback = failure.traceback.replace(str(staging), str(export_path))
        self.written_files = [
            self.output_folder / path.relative_to(staging) if path.is_relative_to(staging) else path
            for path in self.written_files
        ]
        return self.written_files

    def export_report(self, export_path: str | Path) -> Path | None:
        """``report.html`` (:mod:`facebench.report`), made from the files just written. A report
        that fails is recorded as a failure (results.json is rewritten to say so), never raised."""
        try:
            from facebench.report import write_report

            path = write_report(export_path)
        except Exception as exc:
            self._record("report", exc)
            path = None
        else:
            self.written_files.append(path)
        self.decide_status()
        self.export_results_json(export_path)
        return path

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
            except OSError:
                raise  # a file that cannot be written fails the export, not just this plot
            except Exception as exc:
                self._record("plot", exc, task=task_name)
                continue
            self.written_files += plots
            written += plots
        return written

    def export_analysis_tables(self, export_path: str | Path) -> list[Path]:
        """``analyses/<analysis>.csv``: each analysis's tidy table."""
        written = [
            write_csv_atomic(frame, Path(export_path) / "analyses" / f"{safe_filename(name)}.csv")
            for name, frame in self.analysis_results.items()
        ]
        self.written_files += written
        return written

    def export_analyses(self, export_path: str | Path) -> list[Path]:
        """The analysis tables plus each analysis's plots in ``plots/analyses/<analysis>/``."""
        written = self.export_analysis_tables(export_path)
        for name, frame in self.analysis_results.items():
            folder = Path(export_path) / "plots" / "analyses" / safe_filename(name)
            try:
                plots = self.analyses[name].plot(folder, frame)
            except Exception as exc:
                self._record("plot", exc, analysis=name)
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
                band = self.human_percentiles.band(f"{task.name}: {task.human_columns.get(column, column)}")
            if band is None:
                band = task.reference_band(column, performance)
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


def _whole_number(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int (a Python or NumPy integer) of at least ``minimum``, else :class:`ConfigError`."""
    try:
        number = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise ConfigError(f"{name} must be an integer of at least {minimum}, not {value!r}")
    return number


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
    check_distinct_file_names([*into, name], kind)
    into[name] = item


def _names_file(message: str, path: Path) -> bool:
    """Whether ``message`` names the file ``path`` (as given, or made absolute and normalised)."""
    return any(
        re.search(re.escape(form) + r"(?![\w.-])", message) for form in {str(path), os.path.abspath(path)}
    )


def _model_first(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["Model Name", *[c for c in frame.columns if c != "Model Name"]]]


def _enable_console_log() -> None:
    if not any(getattr(h, "_facebench", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        handler._facebench = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)
