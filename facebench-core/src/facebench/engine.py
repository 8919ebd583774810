"""Embed each unique image once per model, and compute pair distances from the store.

:func:`embed_images` reduces the given paths to unique file contents, looks every one up in
the :class:`~facebench.store.EmbeddingStore`, and hands only the missing ones to an executor
(:mod:`facebench.executors`). The ``local`` one is :func:`compute`: a DataLoader (parallel
decoding or byte reading, see :mod:`facebench.datapath`; pinned memory on CUDA) and ONE
forward pass per batch for all of the model's layers, writing each batch to the store as it
goes: a re-run does no forward pass, an interrupted run resumes. :func:`pair_distances` then
reads the rows batch by batch and computes row-wise distances on the model's device, O(N·D)
for N pairs.

Memory does not grow with the number of images: embedding holds one batch (plus a few queued
writes) besides the model, and distances read at most ``MAX_DISTANCE_BATCH_BYTES`` of rows at
a time. LFW-sized (7,701 images, 6,000 pairs) at VGG16 ``features.30`` flattened (25,088
floats), measured with ``benchmarks/store_memory.py``: 0.72 GiB on disk in float32 (0.36 GiB
in float16); writing added no heap; distances peaked about 0.45 GiB of heap above the
baseline, plus the memory-mapped rows read (page cache the OS can drop, at most the table's
size). DINOv2-base tokens flattened (257 x 768) take 5.7 GiB on disk for LFW in float32.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from facebench.datapath import DataPath, choose_data_path, store_identity
from facebench.errors import ConfigError, DataError
from facebench.executors import EmbeddingJob, Executor, resolve_executor
from facebench.images import content_hashes
from facebench.metrics import Metric, resolve_metric
from facebench.store import EmbeddingStore, EmbeddingTable

if TYPE_CHECKING:
    from facebench.model import BaseModel

MAX_DISTANCE_BATCH_BYTES = 128 * 2**20  # float64 rows on the device per pair_distances batch, both sides
MAX_DEFAULT_WORKERS = 8
MAX_PENDING_WRITES = 4  # (batch, layer) writes queued behind the forward passes


@dataclass
class Embeddings:
    """A handle over one model's embeddings of a set of images, kept in the store."""

    model_name: str
    identity: str
    device: torch.device
    tables: dict[str, EmbeddingTable]
    keys: dict[str, str] = field(repr=False)  # absolute image path -> content hash
    computed: int = 0  # unique images embedded by this call
    cached: int = 0  # unique images found in the store
    data_path: str = "cpu"  # how the images reached the device (facebench.datapath)
    failed_layers: dict[str, str] = field(default_factory=dict)  # layer -> why it has no embeddings

    @property
    def layers(self) -> list[str]:
        """The layers embedded without failure."""
        return [layer for layer in self.tables if layer not in self.failed_layers]

    def table(self, layer: str) -> EmbeddingTable:
        """The store table of ``layer``; a :class:`DataError` saying why for a failed layer."""
        if layer in self.failed_layers:
            raise DataError(self.failed_layers[layer])
        if layer not in self.tables:
            raise ConfigError(
                f"model {self.model_name!r} was not embedded at layer {layer!r}; "
                f"embedded layers: {', '.join(self.tables)}"
            )
        return self.tables[layer]

    def keys_for(self, paths: Sequence[str | Path]) -> list[str]:
        """The content hash of each path (which must have been embedded)."""
        keys = []
        for path in paths:
            key = self.keys.get(_absolute(path))
            if key is None:
                raise DataError(
                    f"image {str(path)!r} was not embedded for model {self.model_name!r}; "
                    f"pass every image of the pairs to embed_images first"
                )
            keys.append(key)
        return keys

    def vectors(self, layer: str, paths: Sequence[str | Path]) -> np.ndarray:
        """The float32 embeddings of ``paths`` at ``layer``, shape ``(len(paths), D)``."""
        return self.table(layer).read(self.keys_for(paths))


def embed_images(
    model: BaseModel,
    image_paths: Sequence[str | Path],
    store: EmbeddingStore | None = None,
    batch_size: int = 32,
    num_workers: int | None = None,
    progress: bool = True,
    executor: Executor | str | None = None,
    data_path: str = "auto",
    channels_last: bool = False,
    torch_compile: bool = False,
) -> Embeddings:
    """Embed every unique image of ``image_paths`` at all of ``model``'s layers, using the store.

    Files with the same bytes are embedded once. ``store=None`` uses the user cache folder.
    ``num_workers=None`` picks one decoding worker per core, up to 8 (none for a single batch).
    When the store already holds every image, the model is not even built. ``executor`` runs
    the missing images (an :class:`~facebench.executors.Executor` or a registered name; default
    ``local``); ``data_path`` is ``auto``, ``cpu`` or ``device`` (:mod:`facebench.datapath`).
    ``channels_last`` runs the network in channels-last memory format (often faster for CNNs
    on GPUs; values agree with the default format to float rounding). ``torch_compile``
    compiles the network's forward with ``torch.compile`` (in place, so layer names and hooks are
    unchanged; the first batch pays the compilation); its embeddings are stored under their own
    identity, as its values differ from the eager forward's in the last digits.
    """
    store = store if store is not None else EmbeddingStore()
    path_name = choose_data_path(model, data_path)
    identity = store_identity(model, path_name, torch_compile)
    # an unknown, reused or batch-mixing layer fails before any image is read (on the network
    # built on the meta device); a cached model is not even built
    model.check_layers_before_building()
    paths = [_absolute(path) for path in image_paths]
    keys = content_hashes(paths)
    first_path = dict(zip(reversed(keys), reversed(paths), strict=True))
    tables = {
        layer: store.table(identity, layer, model.reduction_for(layer)) for layer in model.output_layers
    }
    for table in tables.values():
        table.refresh()
    unique = list(dict.fromkeys(keys))
    for table in tables.values():
        table.verify(unique)  # a corrupted chunk is dropped: its images are embedded again
    todo = [key for key in unique if any(key not in table for table in tables.values())]
    if todo:
        store.write_metadata(
            identity,
            {
                **model.describe(),
                "data_path": path_name,
                "torch_compile": torch_compile,
                "layer_names": model.layer_names(),
            },
        )
        job = EmbeddingJob(
            model=model,
            keys=todo,
            paths=[first_path[key] for key in todo],
            store=store,
            identity=identity,
            tables=tables,
            batch_size=batch_size,
            num_workers=num_workers,
            progress=progress,
            data_path=path_name,
            total=len(unique),
            channels_last=channels_last,
            torch_compile=torch_compile,
        )
        prepare = getattr(model.image_step(), "prepare", None)
        if prepare is not None:  # align=mtcnn: crops cached, every face-less image listed at once
            from facebench.alignment import ALIGNED_FOLDER

            prepare(job.paths, store.root / ALIGNED_FOLDER, progress=progress)
        resolve_executor(executor).embed(job)
        failed = {
            layer: nonfinite_message(model, layer, count, len(todo)) for layer, count in job.nonfinite.items()
        }
    else:
        failed = {}
    return Embeddings(
        model_name=model.name,
        identity=identity,
        device=model.device,
        tables=tables,
        keys=dict(zip(paths, keys, strict=True)),
        computed=len(todo),
        cached=len(unique) - len(todo),
        data_path=path_name,
        failed_layers=failed,
    )


def compute(job: EmbeddingJob) -> None:
    """Run the job's images through its model in this process, batch by batch (the ``local``
    executor): DataLoader workers decode, one forward pass per batch, a writer thread stores."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    model, todo, tables, total = job.model, job.keys, job.tables, job.total
    batch_size, progress = job.batch_size, job.progress
    data = DataPath(job.data_path, model, job.channels_last, job.torch_compile)
    dataset = data.dataset(job.paths)
    workers = decoding_workers(job)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=model.device.type == "cuda",
        collate_fn=data.collate_fn(dataset),
    )
    pending: deque[Future[None]] = deque()
    with (
        tqdm(
            total=total, initial=total - len(todo), unit="img", desc=model.name, disable=not progress
        ) as bar,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="facebench-store") as writer,
    ):
        batches = iter(loader)
        try:
            for item in batches:
                indices, batch = data.to_device(item)
                batch_keys = [todo[i] for i in indices.tolist()]
                for table, keys, rows in batch_rows(model, batch, batch_keys, tables, job.nonfinite):
                    pending.append(writer.submit(write_rows, table, keys, rows))
                while len(pending) > MAX_PENDING_WRITES:
                    pending.popleft().result()
                bar.update(len(batch_keys))
            while pending:
                pending.popleft().result()
        except DataError as exc:
            raise DataError(_worker_message(exc)) from None
        finally:
            # stop the workers now: left to garbage collection, an aborted loader takes ~5 s per worker
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()


def batch_rows(
    model: BaseModel,
    batch: torch.Tensor,
    keys: list[str],
    tables: dict[str, EmbeddingTable],
    nonfinite: dict[str, int],
) -> list[tuple[EmbeddingTable, list[str], torch.Tensor]]:
    """ONE forward pass of ``batch`` (images ``keys``); per layer, the rows its table lacks.

    A layer whose output holds NaN or infinity for some image gives no rows for this batch (none
    is ever stored) and adds the number of such images to ``nonfinite[layer]``."""
    outputs = model.get_output(batch)
    missing = []
    for layer, table in tables.items():
        bad = int((~torch.isfinite(outputs[layer])).any(dim=1).sum())
        if bad:
            nonfinite[layer] = nonfinite.get(layer, 0) + bad
            continue
        rows = [i for i, key in enumerate(keys) if key not in table]
        if rows:
            missing.append((table, [keys[i] for i in rows], outputs[layer][rows]))
    return missing


def nonfinite_message(model: BaseModel, layer: str, images: int, total: int) -> str:
    """Why ``layer`` of ``model`` failed: ``images`` of the ``total`` embedded gave NaN or inf."""
    return (
        f"model {model.name!r}: layer {layer!r} produced NaN or infinite values for {images} of "
        f"{total} image(s); nothing of this layer is stored or scored (the other layers are). "
        f"Check the weights (precision fp16 can overflow) or pick another layer"
    )


def write_rows(table: EmbeddingTable, keys: list[str], rows: torch.Tensor) -> None:
    """Copy ``rows`` to the host and store them (on the writer thread, while the next batch runs)."""
    table.write(keys, rows.cpu().numpy())


def decoding_workers(job: EmbeddingJob) -> int:
    """The DataLoader workers :func:`compute` uses for ``job``: its ``num_workers``, or
    :func:`default_num_workers` when that is None."""
    if job.num_workers is not None:
        return job.num_workers
    return default_num_workers(len(job.keys), job.batch_size)


def default_num_workers(images: int, batch_size: int) -> int:
    """Decoding workers: none for a single batch, else one per core up to 8 (16 ran slower on 16 cores)."""
    if images <= batch_size:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, cores))


def _worker_message(exc: DataError) -> str:
    """The original message of a DataError re-raised by a DataLoader worker (without its traceback)."""
    text = str(exc)
    marker = "DataError: "
    return text[text.rindex(marker) + len(marker) :].strip() if "Original Traceback" in text else text


def pair_distances(
    embeddings: Embeddings,
    layer: str,
    img1: Sequence[str | Path],
    img2: Sequence[str | Path],
    metric: Metric | str | Any = "cosine",
    batch_size: int = 1024,
) -> np.ndarray:
    """``d[i] = metric(embedding(img1[i]), embedding(img2[i]))`` at ``layer``, as float64 ``(N,)``.

    Rows are read from the store batch by batch (at most ``batch_size`` pairs, fewer for very
    wide layers) and compared on the model's device, in float64 (float32 on MPS).
    """
    if len(img1) != len(img2):
        raise DataError(f"img1 has {len(img1)} images but img2 has {len(img2)}; they must pair up")
    metric = resolve_metric(metric)
    table = embeddings.table(layer)
    keys1, keys2 = embeddings.keys_for(img1), embeddings.keys_for(img2)
    distances = np.empty(len(keys1), dtype=np.float64)
    if not keys1:
        return distances
    device = embeddings.device
    dtype = torch.float32 if device.type == "mps" else torch.float64
    dim = table.dim or 1
    step = max(1, min(batch_size, MAX_DISTANCE_BATCH_BYTES // (2 * dim * 8)))
    with torch.inference_mode():
        for start in range(0, len(keys1), step):
            stop = min(start + step, len(keys1))
            unique, inverse = np.unique(keys1[start:stop] + keys2[start:stop], return_inverse=True)
            vectors = torch.from_numpy(table.read(unique.tolist())).to(device=device, dtype=dtype)
            index = torch.from_numpy(inverse.reshape(-1)).to(device)
            count = stop - start
            result = metric(vectors[index[:count]], vectors[index[count:]])
            if tuple(result.shape) != (count,):
                raise ConfigError(
                    f"distance {metric.name!r} returned shape {tuple(result.shape)} for {count} pairs; "
                    f"a distance takes two (N, D) tensors and returns N values"
                )
            distances[start:stop] = result.to(torch.float64).cpu().numpy()
    return distances


def _absolute(path: str | Path) -> str:
    return os.path.abspath(os.fspath(path))
