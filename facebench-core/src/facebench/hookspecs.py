"""The hook specifications a facebench plugin implements.

A plugin is a module named by an entry point in the ``facebench`` group. It implements any of
these hooks with ``@facebench.hookimpl`` and calls ``register`` once per thing it provides::

    import facebench

    @facebench.hookimpl
    def register_models(register):
        register(facebench.ModelSpec(
            name="my-net",
            target="my_lab.net:MyNet",          # imported only when the model is used
            description="Our face-trained ResNet-50",
        ))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from facebench.registry import (
        AnalysisSpec,
        BenchmarkSpec,
        DatasetSpec,
        ExecutorSpec,
        MetricSpec,
        ModelSpec,
        TaskSpec,
    )

PROJECT_NAME = "facebench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Register models: call ``register(ModelSpec(...))`` for each one.

    The spec's target (a ``"module:attr"`` string or a factory) must build a
    :class:`facebench.model.BaseModel` when called with the model's options.
    """


@hookspec
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Register tasks: call ``register(TaskSpec(...))`` for each one.

    The spec's target must build a :class:`facebench.task.BaseTask`.
    """


@hookspec
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    """Register distance metrics: call ``register(MetricSpec(...))`` for each one.

    The spec's target is a function ``f(a, b) -> d`` on tensors: ``a`` and ``b`` are
    ``(N, D)``, ``d`` is ``(N,)`` with ``d[i]`` the distance between ``a[i]`` and ``b[i]``.
    """


@hookspec
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    """Register executors (who runs the embedding map): call ``register(ExecutorSpec(...))``.

    The spec's target must build a :class:`facebench.executors.Executor` when called with the
    executor's options; see :mod:`facebench.executors` for the contract.
    """


@hookspec
def register_analyses(register: Callable[[AnalysisSpec], None]) -> None:
    """Register analyses across models (CKA ...): call ``register(AnalysisSpec(...))``.

    The spec's target must build a :class:`facebench.analysis.BaseAnalysis`; the manager runs
    it once, after every model is embedded, on views of every model-layer (see
    :mod:`facebench.analysis` for the contract).
    """


@hookspec
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register datasets (LFW, ...): call ``register(DatasetSpec(...))`` for each one.

    The spec's target reads a copy of the dataset into an images folder plus a pairs file and/or
    an images table that the tasks read unchanged (see :mod:`facebench.datasets`).
    """


@hookspec
def register_benchmarks(register: Callable[[BenchmarkSpec], None]) -> None:
    """Register benchmarks (a lab's tasks, stimuli and human data): call ``register(BenchmarkSpec(...))``.

    The spec's target returns the path of the benchmark's ``benchmark.toml``
    (see :mod:`facebench.benchmarks`).
    """
