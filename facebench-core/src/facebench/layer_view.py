"""``LayerView``: one model-layer's embeddings of a set of images, read from the store in chunks.

This is what a task's :meth:`~facebench.task.BaseTask.evaluate` and an analysis's
:meth:`~facebench.analysis.BaseAnalysis.run` receive. Row ``i`` of the view is the embedding of
``view.images[i]``. Nothing here ever holds the whole ``N x D`` matrix of a layer: every method
reads at most about ``chunk_bytes`` of embeddings at a time (row blocks, or column blocks of all
rows), so a wide flattened layer never has to fit in memory.

* ``len(view)``, ``view.images``, ``view.dim``, ``view.device``: the rows (image names, in the
  order the task asked for), the embedding width D, the model's device;
* ``view.rows_of(names)``: the row numbers of image names;
* ``view.read(rows)``: ``(len(rows), D)`` float32, for a few rows the caller bounds;
* ``view.iter_chunks(rows=None, chunk_rows=None)``: ``(row numbers, (n, D) float32 block)``
  for consecutive slices of the rows;
* ``view.iter_column_chunks(rows=None)``: ``(len(rows), c)`` float32 blocks of consecutive
  dimensions, all the rows at once;
* ``view.gram(rows=None, center=False)``: ``X @ X.T`` in float64, ``(n, n)``, accumulated over
  column blocks: memory O(n^2), not O(n D);
* ``view.pairwise_distances(metric, rows=None)``: a registered (row-wise) metric between every
  pair ``i < j``, condensed in ``scipy.spatial.distance.pdist`` order;
* ``view.pair_distances(img1, img2, metric)``: listed pairs of image names, as pair tasks get
  them (:func:`facebench.engine.pair_distances`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebench.errors import DataError

if TYPE_CHECKING:
    import torch

    from facebench.engine import Embeddings
    from facebench.metrics import Metric

DEFAULT_CHUNK_BYTES = 64 * 2**20
"""About how many bytes of embeddings a view reads (and converts) at a time."""


class LayerView:
    """Chunked, read-only access to one layer of one model's embeddings of ``paths``.

    ``paths`` must all have been embedded (``embeddings`` is what
    :func:`facebench.engine.embed_images` returned); ``names`` are how the rows are called
    (by default the paths as given; tasks use names relative to their images folder).
    ``chunk_bytes`` bounds every read (default: the module's ``DEFAULT_CHUNK_BYTES``).
    """

    def __init__(
        self,
        embeddings: Embeddings,
        layer: str,
        paths: Sequence[str | Path],
        names: Sequence[str] | None = None,
        chunk_bytes: int | None = None,
    ) -> None:
        names = [str(p) for p in paths] if names is None else [str(n) for n in names]
        if len(names) != len(paths):
            raise ValueError(f"{len(paths)} paths but {len(names)} names")
        self.model_name = embeddings.model_name
        self.layer = layer
        self.images: tuple[str, ...] = tuple(names)
        self.chunk_bytes = int(DEFAULT_CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
        self._embeddings = embeddings
        self._table = embeddings.table(layer)
        self._paths = [os.path.abspath(os.fspath(p)) for p in paths]
        self._keys = embeddings.keys_for(self._paths)
        self._row_of = {name: row for row, name in enumerate(self.images)}
        if len(self._row_of) != len(self.images):
            raise DataError(f"{self}: image names must be unique")

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return len(self.images)

    @property
    def dim(self) -> int:
        """The embedding width D."""
        return int(self._table.dim or 0)

    @property
    def device(self) -> torch.device:
        """The model's device (where :meth:`pairwise_distances` computes)."""
        return self._embeddings.device

    def __repr__(self) -> str:
        return (
            f"LayerView(model={self.model_name!r}, layer={self.layer!r}, images={len(self)}, dim={self.dim})"
        )

    # ------------------------------------------------------------------ rows
    def rows_of(self, names: Sequence[str]) -> np.ndarray:
        """The row numbers of image ``names``."""
        try:
            return np.array([self._row_of[str(name)] for name in names], dtype=np.int64)
        except KeyError as exc:
            raise DataError(f"{self}: no image {exc.args[0]!r} among its rows") from None

    def _rows(self, rows: Sequence[int] | np.ndarray | None) -> np.ndarray:
        if rows is None:
            return np.arange(len(self), dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"{self}: row numbers must lie in 0..{len(self) - 1}")
        return rows

    def rows_per_chunk(self, bytes_per_value: int = 4) -> int:
        """How many whole rows fit in ``chunk_bytes`` at ``bytes_per_value`` per dimension."""
        return max(1, self.chunk_bytes // max(1, self.dim * bytes_per_value))

    def read(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """The float32 embeddings of ``rows``, shape ``(len(rows), D)`` (the caller bounds ``rows``)."""
        rows = self._rows(rows)
        return self._table.read([self._keys[r] for r in rows])

    def iter_chunks(
        self, rows: Sequence[int] | np.ndarray | None = None, chunk_rows: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row numbers, float32 block (n, D))`` for consecutive slices of ``rows`` (all rows by
        default), at most ``chunk_rows`` rows each (default: as many as fit in ``chunk_bytes``)."""
        rows = self._rows(rows)
        step = chunk_rows or self.rows_per_chunk()
        for start in range(0, rows.size, step):
            part = rows[start : start + step]
            yield part, self.read(part)

    def iter_column_chunks(self, rows: Sequence[int] | np.ndarray | None = None) -> Iterator[np.ndarray]:
        """Float32 blocks ``(len(rows), c)`` of consecutive dimensions covering all D of them,
        ``c`` chosen so a block takes about ``chunk_bytes / 2`` (its float64 copy the other half)."""
        rows = self._rows(rows)
        keys = [self._keys[r] for r in rows]
        width = max(1, self.chunk_bytes // max(1, 12 * rows.size))
        for start in range(0, self.dim, width):
            yield self._table.read(keys, columns=slice(start, min(start + width, self.dim)))

    # ------------------------------------------------------------------ derived matrices
    def gram(self, rows: Sequence[int] | np.ndarray | None = None, center: bool = False) -> np.ndarray:
        """The linear kernel ``X @ X.T`` of ``rows`` in float64, summed over column blocks.

        ``center=True`` centres every dimension over ``rows`` first (each column block holds
        all the rows, so its column means are exact): ``H K H`` with ``H = I - 11'/n``,
        computed without the cancellation of centring ``K`` afterwards.
        """
        n = self._rows(rows).size
        gram = np.zeros((n, n), dtype=np.float64)
        for block in self.iter_column_chunks(rows):
            block64 = block.astype(np.float64)
            if center:
                block64 -= block64.mean(axis=0, keepdims=True)
            gram += block64 @ block64.T
        return gram

    def pairwise_distances(
        self, metric: Metric | str | Any, rows: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """``metric`` between every pair ``i < j`` of ``rows`` (all rows by default), float64,
        in ``scipy.spatial.distance.pdist`` order (``squareform`` makes the matrix).

        The metric is a registered row-wise distance (the same function pair tasks use), run on
        the model's device in float64 (float32 on MPS) over row blocks of ``chunk_bytes``.
        """
        import torch

        from facebench.metrics import resolve_metric

        metric = resolve_metric(metric)
        rows = self._rows(rows)
        n = rows.size
        out = np.empty(n * (n - 1) // 2, dtype=np.float64)
        if n < 2:
            return out
        device = self.device
        dtype = torch.float32 if device.type == "mps" else torch.float64
        step = max(1, self.rows_per_chunk(8) // 4)  # rows per block; pairs per metric call
        with torch.inference_mode():
            for i0 in range(0, n, step):
                block_i = torch.from_numpy(self.read(rows[i0 : i0 + step])).to(device=device, dtype=dtype)
                for j0 in range(i0, n, step):
                    block_j = (
                        block_i
                        if j0 == i0
                        else torch.from_numpy(self.read(rows[j0 : j0 + step])).to(device=device, dtype=dtype)
                    )
                    width = len(block_j)
                    for start in range(0, len(block_i) * width, step):  # the block grid, a slice at a time
                        cell = np.arange(start, min(start + step, len(block_i) * width))
                        a, b = i0 + cell // width, j0 + cell % width
                        keep = a < b
                        a, b = a[keep], b[keep]
                        if a.size == 0:
                            continue
                        result = metric(block_i[torch.from_numpy(a - i0)], block_j[torch.from_numpy(b - j0)])
                        if tuple(result.shape) != (a.size,):
                            raise DataError(
                                f"distance {metric.name!r} returned shape {tuple(result.shape)} for "
                                f"{a.size} pairs; a distance takes two (N, D) tensors and returns N values"
                            )
                        out[n * a - a * (a + 1) // 2 + (b - a - 1)] = result.to(torch.float64).cpu().numpy()
        return out

    def pair_distances(
        self, img1: Sequence[str], img2: Sequence[str], metric: Metric | str | Any
    ) -> np.ndarray:
        """``metric(row(img1[i]), row(img2[i]))`` for listed pairs of image names, float64
        (:func:`facebench.engine.pair_distances`, as pair tasks get them)."""
        from facebench.engine import pair_distances

        rows1, rows2 = self.rows_of(img1), self.rows_of(img2)
        distances = pair_distances(
            self._embeddings,
            self.layer,
            [self._paths[r] for r in rows1],
            [self._paths[r] for r in rows2],
            metric,
        )
        self._warn_zero_rows(rows1, rows2)
        return distances

    def _warn_zero_rows(self, rows1: np.ndarray, rows2: np.ndarray) -> None:
        """Warn (:func:`facebench.metrics.warn_zero_embeddings`) when some of the pairs' images
        have an all-zero embedding at this layer."""
        from facebench.metrics import warn_zero_embeddings

        used = np.unique(np.concatenate([rows1, rows2]))
        zero = [r for part, block in self.iter_chunks(used) for r in part[~block.any(axis=1)]]
        if zero:
            affected = int((np.isin(rows1, zero) | np.isin(rows2, zero)).sum())
            warn_zero_embeddings(self.layer, [self.images[r] for r in zero], affected, len(rows1))
