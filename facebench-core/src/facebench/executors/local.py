"""The ``local`` executor: this process embeds, with DataLoader workers decoding.

It is :func:`facebench.engine.compute` behind the :class:`~facebench.executors.Executor`
contract: one forward pass per batch on the model's device, each batch written to the store
by a writer thread while the next one runs.
"""

from __future__ import annotations

from typing import Any

from facebench.executors import EmbeddingJob, Executor


class LocalExecutor(Executor):
    """Embed in this process (the default)."""

    name = "local"

    def __init__(self) -> None:
        self.decoding_workers: dict[str, int] = {}  # model name -> DataLoader workers it used

    def embed(self, job: EmbeddingJob) -> None:
        from facebench.engine import compute, decoding_workers

        self.decoding_workers[job.model.name] = decoding_workers(job)
        compute(job)

    def describe(self) -> dict[str, Any]:
        """The name and, per model that embedded images, its DataLoader worker count."""
        return {"name": self.name, "decoding_workers": dict(self.decoding_workers)}

    def __repr__(self) -> str:
        return "LocalExecutor()"
