"""The core's built-in plugin: the distance metrics of :mod:`facebench.metrics`."""

from __future__ import annotations

from collections.abc import Callable

from facebench.hookspecs import hookimpl
from facebench.registry import MetricSpec

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
