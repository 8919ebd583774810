"""Registers the tasks of this package; importing it imports no task module."""

from __future__ import annotations

from collections.abc import Callable

import facebench
from facebench import TaskSpec

TASKS = (
    TaskSpec(
        "accuracy",
        "facebench_tasks.accuracy:AccuracyTask",
        "Verification: AUC, Youden accuracy, 10-fold accuracy, EER, TAR@FAR",
    ),
    TaskSpec(
        "correlation",
        "facebench_tasks.correlation:CorrelationTask",
        "Correlation of model distances with human distances, bootstrap CI",
    ),
    TaskSpec(
        "conditioned-average-distances",
        "facebench_tasks.conditioned_average:ConditionedAverageDistances",
        "Mean (normalised) distance per condition",
    ),
    TaskSpec(
        "relative-difference",
        "facebench_tasks.relative_difference:RelativeDifferenceTask",
        "(m1 - m2) / (m1 + m2) between two groups, e.g. the Thatcher effect",
    ),
)


@facebench.hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    for spec in TASKS:
        register(spec)
