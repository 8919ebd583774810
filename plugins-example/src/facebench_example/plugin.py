"""The hook implementations facebench finds through this package's entry point.

Targets are ``"module:attr"`` strings, so ``facebench list`` imports none of torch, numpy or
the network code: they load only when the model, task or metric is used.
"""

from __future__ import annotations

from collections.abc import Callable

import facebench
from facebench import MetricSpec, ModelSpec, TaskSpec


@facebench.hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    register(
        ModelSpec(
            "dlib-resnet",
            "facebench_example.model:DlibResNet",
            "dlib's face-recognition ResNet (128-d descriptor), offline, in PyTorch; align=mtcnn for photos",
        )
    )


@facebench.hookimpl
def register_tasks(register: Callable[[TaskSpec], None]) -> None:
    register(
        TaskSpec(
            "retrieval",
            "facebench_example.retrieval:RetrievalTask",
            "Identification: top-k accuracy and MRR of finding the query's identity, per direction",
        )
    )


@facebench.hookimpl
def register_metrics(register: Callable[[MetricSpec], None]) -> None:
    register(
        MetricSpec(
            "angular", "facebench_example.metrics:angular_distance", "Angle between embeddings / pi (0 to 1)"
        )
    )
