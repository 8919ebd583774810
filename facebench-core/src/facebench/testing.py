"""Testing support for plugin authors: the conformance checks ``check_model``, ``check_task``
and ``check_metric`` (:mod:`facebench.conformance`), ``check_plugin`` for a whole installed
distribution (:mod:`facebench.plugin_check`), a tiny random-weight network
(:class:`~facebench.tiny_model.TinyConvNet`), tiny stimuli (:mod:`facebench.tiny_data`;
the pytest fixtures ``facebench_task_data`` and ``facebench_images`` come from
:mod:`facebench.pytest_plugin`, registered with pytest when facebench-core is installed), and a
:class:`LayerView` over an array, for testing tasks and analyses without a model.

>>> view = array_view(np.random.default_rng(0).normal(size=(20, 512)), names=[f"{i}.png" for i in range(20)])
>>> result = my_task.evaluate(view)

The rows are written to an embedding store (a temporary folder unless ``folder`` is given),
several chunk files of ``rows_per_file`` rows, exactly as the engine writes them, so the view
reads them back the way it does in a run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from facebench.engine import Embeddings
from facebench.layer_view import LayerView
from facebench.store import EmbeddingStore


def array_view(
    vectors: np.ndarray,
    names: Sequence[str] | None = None,
    folder: str | Path | None = None,
    *,
    layer: str = "layer",
    model_name: str = "array",
    chunk_bytes: int | None = None,
    rows_per_file: int = 256,
) -> LayerView:
    """A view whose row ``i`` is ``vectors[i]`` (stored as float32), called ``names[i]``
    (default ``"0"``, ``"1"``, ...)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be (N, D), got shape {vectors.shape}")
    names = [str(i) for i in range(len(vectors))] if names is None else [str(n) for n in names]
    store = EmbeddingStore(folder)
    identity = hashlib.sha256(f"{model_name}:{id(store)}".encode()).hexdigest()[:16]
    table = store.table(identity, layer, "none")
    keys = [hashlib.sha256(name.encode()).hexdigest()[:32] for name in names]
    for start in range(0, len(keys), rows_per_file):
        table.write(keys[start : start + rows_per_file], vectors[start : start + rows_per_file])
    paths = [str(Path("/facebench-array") / name) for name in names]
    embeddings = Embeddings(
        model_name=model_name,
        identity=identity,
        device=torch.device("cpu"),
        tables={layer: table},
        keys=dict(zip(paths, keys, strict=True)),
    )
    view = LayerView(embeddings, layer, paths, names, chunk_bytes=chunk_bytes)
    view._store = store  # type: ignore[attr-defined]  # keeps a temporary folder alive with the view
    return view


# The conformance checks and stimuli for plugin tests (the fixtures are in facebench.pytest_plugin).
from facebench.conformance import check_metric, check_model, check_task  # noqa: E402
from facebench.plugin_check import check_plugin  # noqa: E402
from facebench.tiny_data import TaskData, identity_embeddings, write_images, write_task_data  # noqa: E402
from facebench.tiny_model import TinyConvNet  # noqa: E402

__all__ = [
    "TaskData",
    "TinyConvNet",
    "array_view",
    "check_metric",
    "check_model",
    "check_plugin",
    "check_task",
    "identity_embeddings",
    "write_images",
    "write_task_data",
]
