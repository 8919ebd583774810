"""facebench: compare neural networks with human face perception.

Importing this package is cheap (no torch): the heavy classes load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from facebench.hookspecs import hookimpl
from facebench.plugins import core_version
from facebench.registry import (
    AnalysisSpec,
    BenchmarkSpec,
    DatasetFile,
    DatasetSpec,
    ExecutorSpec,
    MetricSpec,
    ModelSpec,
    TaskSpec,
)

if TYPE_CHECKING:
    from facebench.analysis import BaseAnalysis
    from facebench.manager import MultiModelTaskManager
    from facebench.model import BaseModel
    from facebench.task import BaseTask
    from facebench.wrapped import wrap

__version__ = core_version()

_LAZY = {
    "BaseAnalysis": "facebench.analysis",
    "BaseModel": "facebench.model",
    "BaseTask": "facebench.task",
    "MultiModelTaskManager": "facebench.manager",
    "wrap": "facebench.wrapped",
}

__all__ = [
    "AnalysisSpec",
    "BaseAnalysis",
    "BaseModel",
    "BaseTask",
    "BenchmarkSpec",
    "DatasetFile",
    "DatasetSpec",
    "ExecutorSpec",
    "MetricSpec",
    "ModelSpec",
    "MultiModelTaskManager",
    "TaskSpec",
    "__version__",
    "hookimpl",
    "wrap",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'facebench' has no attribute {name!r}")
