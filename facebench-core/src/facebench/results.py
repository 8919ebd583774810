"""Writing results: atomic files, per-pair distances, performance tables, the unified summary
and ``results.json``.

Every file is written to a hidden temporary name beside its target and renamed over it with
:func:`os.replace`, so a reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

DISTANCE_COLUMN = "model_computed_distance"
UNIFIED_SUMMARY_FILE = "models_unified_results.csv"
RESULTS_JSON_FILE = "results.json"
RESULTS_SCHEMA_VERSION = 1
ID_COLUMNS = ("Model Name", "Layer Name")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds.

    The temporary file is removed when the block raises, so no partial file is ever left. An
    ``OSError`` (disk full, read-only) becomes a :class:`~facebench.filesystem.FileWriteError`
    naming ``path`` (not the temporary name) and the reason.
    """
    from facebench.filesystem import write_error

    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield temporary
        os.replace(temporary, target)
    except OSError as exc:
        raise write_error(exc, target, "free space there or choose another folder") from exc
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv_atomic(frame: pd.DataFrame, path: str | Path, index: bool = False) -> Path:
    """Write ``frame`` as CSV to ``path`` atomically."""
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, index=index)
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (NaN and infinities as ``null``) atomically."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars, paths and non-finite floats made JSON-friendly."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy / torch scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def safe_filename(text: str) -> str:
    """A file-name-safe version of ``text``: letters, digits, ``.``, ``-`` and ``_``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip()).strip("._")
    return cleaned or "unnamed"


def check_distinct_file_names(names: Sequence[str], kind: str) -> None:
    """Raise :class:`ConfigError` when two of ``names`` become the same file or folder name
    (:func:`safe_filename`, compared ignoring case as on macOS and Windows), so that their
    CSVs and plots would overwrite each other."""
    from facebench.errors import ConfigError

    seen: dict[str, str] = {}
    for name in names:
        key = safe_filename(name).casefold()
        if key in seen and seen[key] != name:
            raise ConfigError(
                f"the {kind} names {seen[key]!r} and {name!r} both become the file name "
                f"{safe_filename(name)!r} (only letters, digits, '.', '-' and '_' are kept, and "
                f"case is ignored), so their results would overwrite each other; rename one"
            )
        seen.setdefault(key, name)


def unified_column(task_name: str, metric_column: str, condition: str | None = None) -> str:
    """``"Task: Metric"``, or ``"Task - Condition: Metric"`` for a per-condition row."""
    prefix = task_name if condition is None else f"{task_name} - {condition}"
    return f"{prefix}: {metric_column}"


def metric_columns(performance: pd.DataFrame) -> list[str]:
    """The numeric metric columns of a performance table (not model, layer or condition)."""
    import pandas as pd

    skip = {*ID_COLUMNS, "Condition", "Distance Metric"}
    return [
        column
        for column in performance.columns
        if column not in skip and pd.api.types.is_numeric_dtype(performance[column])
    ]


def unified_summary(performances: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model x layer, one column per ``"Task: Metric"`` (or per condition).

    ``performances`` maps a task name to its table: ``Model Name``, ``Layer Name``, an
    optional ``Condition`` and the metric columns.
    """
    import pandas as pd

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for task_name, performance in performances.items():
        columns = metric_columns(performance)
        for record in performance.to_dict("records"):
            key = (str(record["Model Name"]), str(record["Layer Name"]))
            row = rows.setdefault(key, {"Model Name": key[0], "Layer Name": key[1]})
            condition = record.get("Condition")
            condition = None if condition is None or pd.isna(condition) else str(condition)
            for column in columns:
                row[unified_column(task_name, column, condition)] = record[column]
    return pd.DataFrame(list(rows.values()), columns=None if rows else list(ID_COLUMNS))


def plugin_record(kind: str, obj: Any, registry: Any) -> dict[str, str] | None:
    """The registry entry (name, plugin, version) whose target is ``obj``'s class, if any."""
    cls = type(obj)
    target = f"{cls.__module__}:{cls.__qualname__}"
    for entry in registry.entries(kind):
        if entry.spec.target == target or entry.spec.target is cls:
            return {
                "registered_name": entry.spec.name,
                "plugin": entry.plugin,
                "plugin_version": entry.plugin_version,
            }
    return None


def environment_versions() -> dict[str, str]:
    """Python, the platform and the versions of the installed libraries results depend on
    (model libraries included; one not installed is left out)."""
    import importlib.metadata
    import platform

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in (
        "torch",
        "torchvision",
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "pillow",
        "matplotlib",
        "transformers",
        "open_clip_torch",
        "timm",
        "facenet-pytorch",
        "rsatoolbox",
        "ray",
    ):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def metric_records(performances: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """One record per task x model x layer (x condition): its metric values and distance metric."""
    import pandas as pd

    records = []
    for task_name, performance in performances.items():
        columns = metric_columns(performance)
        for row in performance.to_dict("records"):
            condition = row.get("Condition")
            records.append(
                {
                    "task": task_name,
                    "model": row["Model Name"],
                    "layer": row["Layer Name"],
                    "condition": None if condition is None or pd.isna(condition) else str(condition),
                    "distance_metric": row.get("Distance Metric"),
                    "values": {column: row[column] for column in columns},
                }
            )
    return records


def build_results_document(
    manager: Any, export_path: Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The content of ``results.json`` for a :class:`facebench.manager.MultiModelTaskManager`."""
    import shlex
    import sys

    from facebench.plugins import core_version
    from facebench.registry import get_registry

    registry = get_registry()
    used_plugins: dict[str, str] = {}

    def with_plugin(kind: str, obj: Any, description: dict[str, Any]) -> dict[str, Any]:
        record = manager.plugin_sources.get(f"{kind}:{obj.name}") or plugin_record(kind, obj, registry)
        if record:
            used_plugins[record["plugin"]] = record["plugin_version"]
        return {**description, "plugin": record}

    models = []
    for model in manager.models.values():
        try:
            description = model.describe()
        except Exception as exc:  # a model that cannot describe itself must not lose the results
            description = {
                "name": model.name,
                "class": type(model).__qualname__,
                "error": f"{type(exc).__name__}: {exc}",
            }
        models.append(with_plugin("model", model, description))
    tasks = []
    for task in manager.tasks.values():
        description = with_plugin("task", task, task.describe())
        description.setdefault("headline_metrics", list(getattr(task, "plot_columns", ())))
        description.setdefault("human_columns", dict(getattr(task, "human_columns", {})))
        if task.metric.name in registry.names("metric"):
            entry = registry.get("metric", task.metric.name)
            description["metric_plugin"] = {"plugin": entry.plugin, "plugin_version": entry.plugin_version}
            used_plugins[entry.plugin] = entry.plugin_version
        tasks.append(description)
    used_plugins.setdefault("facebench-core", core_version())

    started, finished = manager.started_at, manager.finished_at
    store = manager._store
    document: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "facebench_version": core_version(),
        "status": manager.status,
        "started_at": started.isoformat() if started else None,
        "finished_at": finished.isoformat() if finished else None,
        "duration_seconds": round((finished - started).total_seconds(), 3) if started and finished else None,
        "command_line": shlex.join(sys.argv),
        "environment": environment_versions(),
        "plugins": [
            {"name": name, "version": version, "used": name in used_plugins}
            for name, version in sorted({info.name: info.version for info in registry.plugins}.items())
        ],
        "plugins_used": dict(sorted(used_plugins.items())),
        "settings": {
            "batch_size": manager.batch_size,
            "num_workers": manager.num_workers,
            "executor": manager.executor.describe(),
            "data_paths": dict(manager.data_paths),
            "channels_last": manager.channels_last,
            "torch_compile": manager.torch_compile,
            "cache_dir": None if store is None or store.temporary else str(store.root),
            "devices": sorted({str(m.get("device")) for m in models if m.get("device")}),
            "precisions": sorted({str(m.get("precision")) for m in models if m.get("precision")}),
            "seeds": {m["name"]: m.get("seed") for m in models},
            "human_percentiles": getattr(manager.human_percentiles, "source", None),
            "human_percentiles_sha256": _file_sha256(getattr(manager.human_percentiles, "source", None)),
        },
        "experiment": manager.experiment,
        "models": models,
        "tasks": tasks,
        "analyses": [
            with_plugin("analysis", analysis, analysis.describe())
            for analysis in getattr(manager, "analyses", {}).values()
        ],
        "metrics": metric_records(manager.tasks_performance_dfs),
        "failures": [failure.to_dict() for failure in manager.failures],
        "files": sorted({_relative(path, export_path) for path in manager.written_files}),
    }
    if extra:
        document.update(extra)
    return document


def _file_sha256(path: str | None) -> str | None:
    """The SHA-256 of the file at ``path``, or None when there is none."""
    import hashlib

    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
