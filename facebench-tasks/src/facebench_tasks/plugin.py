"""Registers the tasks of this package; importing it imports no task module."""

from __future__ import annotations

from collections.abc import Callable

import facebench
from facebench import AnalysisSpec, TaskSpec

TASKS = (
    TaskSpec(
        "accuracy",
        "facebench_tasks.accuracy:AccuracyTask",
        "Verification: 10-fold cross-validated accuracy, AUC, EER, TAR@FAR, in-sample accuracy",
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
        "rsa",
        "facebench_tasks.rsa:RSATask",
        "RSA with rsatoolbox: layer RDM vs human RDMs, noise ceiling, bootstrap CI",
    ),
    TaskSpec(
        "relative-difference",
        "facebench_tasks.relative_difference:RelativeDifferenceTask",
        "(m1 - m2) / (m1 + m2) between two groups, e.g. the Thatcher effect",
    ),
    TaskSpec(
        "probe",
        "facebench_tasks.probe:ProbeTask",
        "Cross-validated linear decoding of a per-image label (images table), chance level",
    ),
    TaskSpec(
        "adaptation",
        "facebench_tasks.adaptation:AdaptationTask",
        "A map on frozen embeddings trained on matched pairs (InfoNCE); held-out retrieval",
    ),
)


@facebench.hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    for spec in TASKS:
        register(spec)


ANALYSES = (
    AnalysisSpec(
        "cka",
        "facebench_tasks.cka:CKAAnalysis",
        "Linear and debiased linear CKA between every layer of every model (Gram matrices, chunked)",
    ),
)


@facebench.hookimpl
def register_analyses(register: Callable[[AnalysisSpec], None]) -> None:
    for spec in ANALYSES:
        register(spec)
