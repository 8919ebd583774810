"""Executors: who runs the embedding map. The contract every executor implements.

:func:`facebench.engine.embed_images` decides WHAT to embed: it hashes the images, drops
duplicate files, and looks every content hash up in the store. It then hands an executor an
:class:`EmbeddingJob`: the model (not yet built, when nothing was cached), the unique images
still missing from the store (their content hashes, in order, and one file path each), the
store and the tables (one per layer) to fill. The executor decides WHO embeds them:

- it must write, for every key of the job, the model's output at every layer the table of
  that layer does not hold yet, as store chunks (:meth:`facebench.store.EmbeddingTable.write`,
  one atomic chunk per batch and layer; chunks from many processes may land in one table);
- it must split the keys into batches in order (``job.batches()``), so that every executor
  feeds the network the same batches and writes the same values;
- it must raise (a :class:`~facebench.errors.FacebenchError` where it can) when an image or
  a worker fails: the manager records that model as failed, as for a local failure;
- it writes no row holding NaN or infinity: it counts, per layer, the images whose output was
  not finite in ``job.nonfinite`` (:func:`facebench.engine.batch_rows` does both), and that
  layer fails for the model while the other layers' rows are kept;
- it returns nothing: everything after embedding (distances, tasks, exports) reads the store,
  and cannot tell executors apart. A killed run leaves whole chunks; the next run resumes.

Executors are registered like models (``register_executors`` hook, :class:`ExecutorSpec`):
the core registers ``local`` (this process: DataLoader workers decode, one forward pass per
batch; :mod:`facebench.executors.local`) and ``ray`` (Ray Data ``map_batches`` over an actor
pool, one model per actor; :mod:`facebench.executors.ray`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facebench.model import BaseModel
    from facebench.store import EmbeddingStore, EmbeddingTable

DEFAULT_EXECUTOR = "local"


@dataclass
class EmbeddingJob:
    """What an executor embeds: ``keys[i]`` (a content hash) is the image file ``paths[i]``.

    ``identity`` keys the store (the model's identity, or a variant of it when the data path
    changes values, see :mod:`facebench.datapath`); ``tables`` maps each output layer to its
    table; ``total`` counts the unique images including those already stored (for progress bars);
    the executor fills ``nonfinite`` (layer -> images whose output held NaN or infinity).
    """

    model: BaseModel
    keys: list[str]
    paths: list[str]
    store: EmbeddingStore
    identity: str
    tables: dict[str, EmbeddingTable]
    batch_size: int = 32
    num_workers: int | None = None
    progress: bool = True
    data_path: str = "cpu"
    total: int = 0
    channels_last: bool = False  # the network and its input batches in channels-last memory format
    torch_compile: bool = False  # the network's forward compiled with torch.compile
    nonfinite: dict[str, int] = field(default_factory=dict)  # layer -> images with NaN/inf output

    def batches(self) -> Iterator[tuple[list[str], list[str]]]:
        """``(keys, paths)`` of each batch, ``batch_size`` images each (the last may be smaller)."""
        for start in range(0, len(self.keys), self.batch_size):
            stop = start + self.batch_size
            yield self.keys[start:stop], self.paths[start:stop]


class Executor(abc.ABC):
    """Runs the embedding map of an :class:`EmbeddingJob` (see the module docstring)."""

    name: str = ""

    @abc.abstractmethod
    def embed(self, job: EmbeddingJob) -> None:
        """Write every missing embedding of ``job`` into its tables, or raise."""

    def describe(self) -> dict[str, Any]:
        """What results.json records about this executor."""
        return {"name": self.name}


def resolve_executor(executor: Executor | str | None, **options: Any) -> Executor:
    """An :class:`Executor` from an instance, a registered name (``facebench list executors``)
    or None (``local``)."""
    if isinstance(executor, Executor):
        return executor
    from facebench.registry import get_registry

    return get_registry().create("executor", executor or DEFAULT_EXECUTOR, **options)


__all__ = ["DEFAULT_EXECUTOR", "EmbeddingJob", "Executor", "resolve_executor"]
