"""The hook implementations facebench finds through this package's entry point."""

from __future__ import annotations

from collections.abc import Callable

import facebench
from facebench import MetricSpec


@facebench.hookimpl
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    register(
        MetricSpec(
            "angular", "facebench_example.metrics:angular_distance", "Angle between embeddings / pi (0 to 1)"
        )
    )
