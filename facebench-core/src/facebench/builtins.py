"""The core's built-in plugin: the distance metrics of :mod:`facebench.metrics` and the executors
of :mod:`facebench.executors`."""

from __future__ import annotations

from collections.abc import Callable

from facebench.hookspecs import hookimpl
from facebench.registry import ExecutorSpec, MetricSpec

BUILTIN_METRICS = (
    MetricSpec(
        "cosine",
        "facebench.metrics:cosine_distance",
        "1 - cosine similarity of the two embeddings (0 to 2)",
        bounded=True,
    ),
    MetricSpec("euclidean", "facebench.metrics:euclidean_distance", "L2 distance"),
    MetricSpec(
        "squared-euclidean",
        "facebench.metrics:squared_euclidean_distance",
        "squared L2 distance",
    ),
    MetricSpec(
        "correlation",
        "facebench.metrics:correlation_distance",
        "1 - Pearson correlation across the embedding's dimensions (0 to 2)",
        bounded=True,
    ),
    MetricSpec("manhattan", "facebench.metrics:manhattan_distance", "L1 (city-block) distance"),
)


@hookimpl
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    for spec in BUILTIN_METRICS:
        register(spec)


BUILTIN_EXECUTORS = (
    ExecutorSpec(
        "local",
        "facebench.executors.local:LocalExecutor",
        "this process embeds; DataLoader workers decode (the default)",
    ),
    ExecutorSpec(
        "ray",
        "facebench.executors.ray:RayExecutor",
        'Ray Data actors embed, one model each, on one or many machines (pip install "facebench-core[ray]")',
    ),
)


@hookimpl
def register_executors(register: Callable[[ExecutorSpec], None]) -> None:
    for spec in BUILTIN_EXECUTORS:
        register(spec)
