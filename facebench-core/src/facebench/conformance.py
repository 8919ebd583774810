"""Conformance checks a plugin author calls in one line (re-exported by :mod:`facebench.testing`).

- :func:`check_model` ``(name, **options)``: builds the model offline (pass options that need no
  download: ``pretrained=false``, a tiny ``config``, a local ``weights_path``), checks every
  listed layer is extractable in one forward pass, outputs are ``(B, D)`` finite float32, the
  same under the same seed, the identity is stable, ignores the name, device and layers, and
  changes with every output-changing option (and each preprocessing option); and that building
  the network opens no file outside its ``data_files()`` (whose digests are in the identity)
  besides installed code and hub caches: a checkpoint read behind the identity's back would be
  served stale from the cache after it changes.
- :func:`check_task` ``(name, **options)``: runs the task on :mod:`facebench.tiny_data` stimuli
  and identity-structured embeddings, checks the result rows, the documented plot and error
  columns, and that a pairs file lacking each needed column is refused naming that column.
- :func:`check_metric` ``(name)``: row-wise ``(N,)`` output, zero on identical rows, no
  negative distances, symmetric (unless its spec says ``symmetric=False``), ``bounded``
  metrics within ``[0, 2]``.

Each raises ``AssertionError`` saying what failed, and returns what it built.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import numpy as np
import pandas as pd
import torch

from facebench.errors import FacebenchError
from facebench.model import NON_OUTPUT_OPTIONS, BaseModel
from facebench.preprocessing import Preprocessing
from facebench.registry import MetricSpec, Registry, get_registry
from facebench.task import BaseTask, TaskResult
from facebench.tiny_data import TaskData, identity_embeddings, write_task_data
from facebench.typed_options import declared_options


# ---------------------------------------------------------------------------------- models
def check_model(
    name: str,
    *,
    registry: Registry | None = None,
    all_layers: bool = True,
    changes: Mapping[str, Any] | None = None,
    **options: Any,
) -> BaseModel:
    """Check the model registered as ``name``, built with ``options`` (see the module docstring).

    ``all_layers=False`` checks only the default layers (for networks too big to run every
    layer of). ``changes`` gives, per output-changing option, another valid value to check the
    identity changes with; options without one get a derived value (bools flipped, numbers
    changed, another ``Literal`` choice) where one exists.
    """
    registry = registry or get_registry()
    options = {"device": "cpu", **options}

    def create(**extra: Any) -> BaseModel:
        model = registry.create("model", name, **{**options, **extra})
        assert isinstance(model, BaseModel), f"model {name!r} is a {type(model).__name__}, not a BaseModel"
        return model

    model = create()
    model.model_options()  # raises if a declared option is not stored under its own name
    with _opened_files() as opened:
        _ = model.model
    undeclared = _undeclared_files(model, opened)
    assert not undeclared, (
        f"{name}: building the network read {', '.join(map(repr, undeclared))}, which "
        f"{'is' if len(undeclared) == 1 else 'are'} not among its data_files(), so the cache cannot "
        f"see {'it' if len(undeclared) == 1 else 'them'} change; list every file _build_model reads in "
        f"data_files() and read it through self.read_file(path)"
    )
    batch = _preprocessed_images(model)

    outputs = model.get_output(batch)
    assert list(outputs) == model.output_layers, f"{name}: outputs {list(outputs)} != {model.output_layers}"
    for layer, output in outputs.items():
        _check_output(name, layer, output, len(batch))

    layers = model.layer_names()
    assert layers, f"{name}: layer_names() is empty"
    if all_layers:
        # every layer that runs exactly once per pass is extractable (facebench layers marks the others)
        calls = model.layer_calls() or {}
        listed = [layer for layer in layers if len(calls.get(layer, ())) == 1]
        assert listed, f"{name}: no layer runs exactly once in a forward pass"
        second = create(extract_layers=listed, reduction="flatten")
        for layer, output in second.get_output(batch).items():
            _check_output(name, layer, output, len(batch))
    else:
        second = create()
        for layer, output in second.get_output(batch).items():
            assert torch.equal(output, outputs[layer]), f"{name}: layer {layer!r} differs between two builds"
    first, rebuilt = model.model.state_dict(), second.model.state_dict()
    assert first.keys() == rebuilt.keys(), f"{name}: two builds have different parameters"
    for key, tensor in first.items():
        assert torch.equal(tensor, rebuilt[key]), f"{name}: {key!r} differs between two builds with one seed"

    identity = model.identity
    assert create().identity == identity, f"{name}: two identical instances have different identities"
    same = create(name=f"{name}-renamed", extract_layers=layers[:1])
    assert same.identity == identity, f"{name}: the identity changed with name or extract_layers"
    for option, value in _identity_changes(model, changes or {}).items():
        try:
            changed = create(**{option: value}).identity
        except FacebenchError:
            continue  # that value is not valid with these options
        assert changed != identity, (
            f"{name}: the identity did not change with {option}={value!r} "
            f"(was {getattr(model, option, 'the default')!r}); "
            f"an option that changes outputs must be a declared constructor parameter stored as self.{option}"
        )
    return model


_RECORDERS: list[set[str]] = []  # the sets of _opened_files blocks now running
_HOOKED = False
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyi", ".so", ".pyd", ".pth", ".dylib", ".dll"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _RECORDERS and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        for recorder in _RECORDERS:
            recorder.add(path)


@contextlib.contextmanager
def _opened_files() -> Iterator[set[str]]:
    """The paths Python opens (``open``, ``io.open``, ``os.open``: the ``open`` audit event) while
    the block runs. The audit hook is added once per process and idles when nothing records."""
    global _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED = True
    opened: set[str] = set()
    _RECORDERS.append(opened)
    try:
        yield opened
    finally:
        _RECORDERS.remove(opened)


def _undeclared_files(model: BaseModel, opened: set[str]) -> list[str]:
    """The regular files among ``opened`` that are not ``model.data_files()``, leaving out code and
    files under the interpreter's and packages' folders, the hub caches and facebench's cache."""
    import site

    import platformdirs

    allowed = {Path(file).expanduser().resolve() for file in model.data_files()}
    here = Path.cwd().resolve()
    roots = [sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), torch.hub.get_dir()]
    roots += [platformdirs.user_cache_dir("facebench"), os.environ.get("HF_HOME", "~/.cache/huggingface")]
    roots += [p for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != here]
    folders = {Path(root).expanduser().resolve() for root in roots}
    found = []
    for name in sorted(opened):
        path = Path(name).resolve()
        if not path.is_file() or path.suffix in CODE_SUFFIXES or path in allowed:
            continue
        if str(path).startswith(("/dev/", "/proc/", "/sys/")) or any(path.is_relative_to(f) for f in folders):
            continue
        found.append(str(path))
    return found


def _preprocessed_images(model: BaseModel, count: int = 2) -> torch.Tensor:
    with tempfile.TemporaryDirectory() as folder:
        data = write_task_data(folder, identities=count, per_identity=1, size=40)
        tensors = [model.preprocess_image(data.images / image) for image in data.image_names]
    shapes = {tuple(t.shape) for t in tensors}
    assert len(shapes) == 1, f"{model.name}: preprocessing gives tensors of different shapes {shapes}"
    return torch.stack(tensors)


def _check_output(name: str, layer: str, output: torch.Tensor, batch: int) -> None:
    assert isinstance(output, torch.Tensor), f"{name}: layer {layer!r} gave {type(output).__name__}"
    assert output.ndim == 2 and output.shape[0] == batch and output.shape[1] > 0, (
        f"{name}: layer {layer!r} gave shape {tuple(output.shape)}, not ({batch}, D)"
    )
    assert output.dtype == torch.float32, f"{name}: layer {layer!r} gave {output.dtype}, not float32"
    assert bool(torch.isfinite(output).all()), f"{name}: layer {layer!r} has NaN or infinite values"


def _identity_changes(model: BaseModel, changes: Mapping[str, Any]) -> dict[str, Any]:
    """An alternative value for every declared output-changing option (whatever
    ``model_options()`` says) and every preprocessing field; ``changes`` take precedence."""
    excluded = NON_OUTPUT_OPTIONS | type(model).non_output_options
    if model.weights_path is not None:
        excluded |= type(model).weights_options
    result: dict[str, Any] = {}
    for option, declaration in declared_options(type(model)).items():
        if option in excluded:
            continue
        current = getattr(model, option, declaration.default)
        value = _another_value(current, declaration.annotation)
        if value is not None:
            result[option] = value
    preprocessing: Preprocessing = model.preprocessing
    result.update(
        {
            "resize": preprocessing.resize + 1 if isinstance(preprocessing.resize, int) else 33,
            "crop": None if preprocessing.crop is not None else 32,
            "mean": tuple(m + 0.1 for m in preprocessing.mean),
            "std": tuple(s * 2 for s in preprocessing.std),
            "grayscale": not preprocessing.grayscale,
            "interpolation": "nearest" if preprocessing.interpolation != "nearest" else "bilinear",
        }
    )
    result.update(changes)
    return result


def _another_value(value: Any, annotation: Any) -> Any:
    """A different valid-looking value of the same type, or None."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    choices = [
        c
        for arg in (get_args(annotation) or (annotation,))
        if get_origin(arg) is Literal
        for c in get_args(arg)
    ]
    if get_origin(annotation) is Literal:
        choices = list(get_args(annotation))
    others = [c for c in choices if c != value]
    return others[0] if others else None


# ---------------------------------------------------------------------------------- tasks
def check_task(
    name: str, *, registry: Registry | None = None, data: TaskData | None = None, **options: Any
) -> TaskResult:
    """Check the task registered as ``name`` with ``options`` on tiny stimuli (``data``: from
    :func:`facebench.tiny_data.write_task_data`; written to a temporary folder when None)."""
    registry = registry or get_registry()
    if data is None:
        with tempfile.TemporaryDirectory() as folder:
            return check_task(name, registry=registry, data=write_task_data(folder), **options)
    task_class = registry.get("task", name).spec.load()
    inputs: dict[str, Any] = {"images_path": data.images}
    if getattr(task_class, "pairs_file", "required") != "unused":
        inputs["pairs_file_path"] = data.pairs
    if getattr(task_class, "images_table", "unused") == "required":
        inputs["table_path"] = data.table
    inputs.update(options)

    task = registry.create("task", name, **inputs)
    assert isinstance(task, BaseTask), f"task {name!r} is a {type(task).__name__}, not a BaseTask"
    names = task.image_names()
    assert names and set(names) <= set(data.image_names), (
        f"{name}: image_names() {names[:3]}... not in the data"
    )
    from facebench.testing import array_view

    result = task.evaluate(array_view(identity_embeddings(names), names=names))
    assert isinstance(result, TaskResult), (
        f"{name}: evaluate() returned {type(result).__name__}, not TaskResult"
    )
    performance = result.performance
    assert isinstance(performance, pd.DataFrame) and len(performance) >= 1, f"{name}: no result rows"
    assert "Distance Metric" in performance.columns, (
        f"{name}: result rows lack 'Distance Metric' (use result_row)"
    )
    for column in task.plot_columns:
        assert column in performance.columns, f"{name}: plot column {column!r} is not in the result"
        values = pd.to_numeric(performance[column], errors="coerce")
        assert values.notna().any(), f"{name}: plot column {column!r} has no numbers"
        errors = task.error_columns(column)
        if errors is not None and set(errors) <= set(performance.columns):  # else plot() derives them
            low, high = errors
            bounded = performance[[low, column, high]].apply(pd.to_numeric, errors="coerce").dropna()
            assert (
                (bounded[low] <= bounded[column] + 1e-9) & (bounded[column] <= bounded[high] + 1e-9)
            ).all(), (
                f"{name}: error columns {errors} are not bounds around {column!r} (give the interval's "
                f"low and high values, not offsets)"
            )
    _check_plots(name, task, result, data.root / "plots")
    if "pairs_file_path" in inputs:
        _check_missing_columns_are_refused(registry, name, task, inputs, data)
    return result


def _check_plots(name: str, task: BaseTask, result: TaskResult, folder: Path) -> None:
    """``plot()`` called as the manager calls it (two models, so bars compare); files exist."""
    where = {"Layer Name": "layer", "Task Name": task.name}
    performance = pd.concat(
        [result.performance.assign(**where, **{"Model Name": model}) for model in ("model-a", "model-b")],
        ignore_index=True,
    )
    distances = None
    if result.distances is not None:
        distances = pd.concat(
            [result.distances.assign(**where, **{"Model Name": model}) for model in ("model-a", "model-b")],
            ignore_index=True,
        )
    written = task.plot(folder, performance, pairs_distances=distances)
    assert isinstance(written, list), f"{name}: plot() returned {type(written).__name__}, not a list of paths"
    missing = [str(path) for path in written if not Path(path).is_file()]
    assert not missing, f"{name}: plot() returned paths that do not exist: {missing}"


def _check_missing_columns_are_refused(
    registry: Registry, name: str, task: BaseTask, inputs: dict[str, Any], data: TaskData
) -> None:
    frame = pd.read_csv(data.pairs)
    for column in task.columns():
        broken = data.root / f"without-{column}.csv"
        frame.drop(columns=[column]).to_csv(broken, index=False)
        try:
            registry.create("task", name, **{**inputs, "pairs_file_path": broken})
        except FacebenchError as exc:
            assert column in str(exc), (
                f"{name}: the error for a missing {column!r} column does not name it: {exc}"
            )
        else:
            raise AssertionError(f"{name}: a pairs file without the {column!r} column was accepted")
        finally:
            broken.unlink()


# ---------------------------------------------------------------------------------- metrics
def check_metric(name: str, *, registry: Registry | None = None) -> MetricSpec:
    """Check the metric registered as ``name`` (see the module docstring)."""
    registry = registry or get_registry()
    spec = registry.get("metric", name).spec
    assert isinstance(spec, MetricSpec), f"metric {name!r} is registered with a {type(spec).__name__}"
    function = spec.load()
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    distances = function(a, b)
    assert isinstance(distances, torch.Tensor), f"{name}: returned {type(distances).__name__}, not a tensor"
    assert distances.shape == (6,), f"{name}: 6 row pairs gave shape {tuple(distances.shape)}, not (6,)"
    assert bool(torch.isfinite(distances).all()), f"{name}: NaN or infinite distances on random rows"
    torch.testing.assert_close(
        function(a[2:4], b[2:4]), distances[2:4], msg=f"{name}: rows are not independent"
    )
    identical = function(a, a.clone())
    assert float(identical.abs().max()) <= 1e-5, (
        f"{name}: distance of a row to itself is {identical.tolist()}"
    )
    assert float(distances.min()) >= -1e-6, f"{name}: negative distances {distances.tolist()}"
    if spec.symmetric:
        torch.testing.assert_close(function(b, a), distances, msg=f"{name}: d(a, b) != d(b, a)")
    if spec.bounded:
        assert float(distances.max()) <= 2 + 1e-6, f"{name}: a bounded (1 - similarity) metric gave > 2"
    in_float64 = function(a.double(), b.double())
    assert np.allclose(in_float64.float().numpy(), distances.numpy(), atol=1e-4), f"{name}: float64 disagrees"
    return spec


__all__ = ["check_metric", "check_model", "check_task"]
