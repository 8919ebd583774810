"""A disk-backed, append-only embedding store that doubles as the cache.

Layout, under the cache folder (default ``platformdirs.user_cache_dir("facebench")/embeddings``)::

    v1/<model identity>/model.json                      what the model was (for people)
    v1/<model identity>/<layer>@<reduction>@<dtype>/    one table per layer, reduction, dtype
        <time>-<pid>-<random>.npy                       one chunk per written batch

A chunk is a NumPy structured array: each record holds an image's content hash (``key``)
and its embedding (``vector``), so one file carries both and is written atomically (to a
temporary name in the same folder, then ``os.replace``): a killed run leaves whole chunks
or nothing, and the next run resumes from the chunks that exist. Chunks are read through
memory maps, so a table never has to fit in RAM; only the rows asked for are read.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import ConfigError

LAYOUT_VERSION = "v1"
KEY_DTYPE = "S32"
DTYPES = ("float32", "float16")
STALE_TEMP_SECONDS = 3600


def default_cache_dir() -> Path:
    """``platformdirs.user_cache_dir("facebench")/embeddings``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("facebench")) / "embeddings"


class _UserCache:
    def __repr__(self) -> str:
        return "<user cache dir>"


USER_CACHE: Any = _UserCache()


class EmbeddingStore:
    """Embeddings on disk, keyed by model identity, layer, reduction and image content hash.

    ``cache_dir`` defaults to the user cache folder; ``None`` means a temporary folder that
    :meth:`close` deletes (``--no-cache``). ``dtype`` is ``"float32"`` or ``"float16"``.
    """

    def __init__(self, cache_dir: str | Path | None = USER_CACHE, dtype: str = "float32") -> None:
        if dtype not in DTYPES:
            raise ConfigError(f"embedding dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        self.dtype = dtype
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if cache_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="facebench-embeddings-")
            root = Path(self._temporary.name)
        else:
            root = default_cache_dir() if cache_dir is USER_CACHE else Path(cache_dir).expanduser()
        self.root = root
        self._tables: dict[tuple[str, str, str], EmbeddingTable] = {}

    @property
    def temporary(self) -> bool:
        """Whether :meth:`close` deletes the folder."""
        return self._temporary is not None

    def table(self, identity: str, layer: str, reduction: str) -> EmbeddingTable:
        """The table of ``layer`` (reduced by ``reduction``) for the model ``identity``."""
        key = (identity, layer, reduction)
        if key not in self._tables:
            folder = self.root / LAYOUT_VERSION / identity / f"{safe_name(layer)}@{reduction}@{self.dtype}"
            self._tables[key] = EmbeddingTable(folder, np.dtype(self.dtype))
        return self._tables[key]

    def write_metadata(self, identity: str, description: dict[str, Any]) -> None:
        """Record what model ``identity`` is, for people browsing the cache."""
        folder = self.root / LAYOUT_VERSION / identity
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "model.json", json.dumps(description, indent=2, default=str).encode())

    def read_metadata(self, identity: str) -> dict[str, Any] | None:
        """What :meth:`write_metadata` recorded for ``identity``, or None."""
        try:
            data = json.loads((self.root / LAYOUT_VERSION / identity / "model.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def close(self) -> None:
        """Release the memory maps; delete the folder if it is temporary."""
        for table in self._tables.values():
            table.close()
        self._tables.clear()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r}, dtype={self.dtype!r}, temporary={self.temporary})"


class EmbeddingTable:
    """The ``(image key -> vector)`` rows of one model, layer, reduction and dtype."""

    def __init__(self, folder: Path, dtype: np.dtype[Any]) -> None:
        self.folder = folder
        self.dtype = dtype
        self._chunks: list[np.ndarray] = []
        self._index: dict[str, tuple[int, int]] = {}
        self._seen: set[str] = set()
        self.refresh()

    @property
    def dim(self) -> int | None:
        """The embedding width, or None while the table is empty."""
        return int(self._chunks[0].dtype["vector"].shape[0]) if self._chunks else None

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys that have no row yet, in order."""
        return [key for key in keys if key not in self._index]

    def refresh(self) -> None:
        """Pick up chunks written since the table was opened (by this or another process)."""
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.iterdir()):
            if path.name.startswith(".tmp-"):
                _remove_if_stale(path)
            elif path.suffix == ".npy" and path.name not in self._seen:
                self._add_chunk(path)

    def _add_chunk(self, path: Path, keys: Sequence[str] | None = None) -> None:
        self._seen.add(path.name)
        try:
            chunk = np.load(path, mmap_mode="r", allow_pickle=False)
            if chunk.dtype.names != ("key", "vector"):
                raise ValueError(f"fields {chunk.dtype.names}")
        except (OSError, ValueError, EOFError) as exc:  # e.g. emptied by a power cut: recompute its rows
            warnings.warn(f"ignoring unreadable embedding chunk {path} ({exc})", RuntimeWarning, stacklevel=2)
            return
        number = len(self._chunks)
        self._chunks.append(chunk)
        if keys is None:
            keys = [key.decode() for key in chunk["key"].tolist()]
        for row, key in enumerate(keys):
            self._index.setdefault(key, (number, row))

    def write(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` under ``keys[i]``, as one atomically written chunk."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"expected {len(keys)} rows of vectors, got shape {vectors.shape}")
        if self.dim is not None and vectors.shape[1] != self.dim:
            raise ValueError(f"{self.folder}: rows have width {self.dim}, not {vectors.shape[1]}")
        records = np.empty(len(keys), dtype=[("key", KEY_DTYPE), ("vector", self.dtype, (vectors.shape[1],))])
        records["key"] = [key.encode() for key in keys]
        records["vector"] = vectors
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy"
        atomic_write(self.folder / name, lambda handle: np.save(handle, records, allow_pickle=False))
        self._add_chunk(self.folder / name, keys)

    def read(self, keys: Sequence[str]) -> np.ndarray:
        """The float32 rows of ``keys``, shape ``(len(keys), dim)``."""
        try:
            places = [self._index[key] for key in keys]
        except KeyError as exc:
            raise KeyError(f"{self.folder}: no embedding for image key {exc.args[0]}") from None
        out = np.empty((len(keys), self.dim or 0), dtype=np.float32)
        by_chunk: dict[int, list[tuple[int, int]]] = {}
        for position, (chunk, row) in enumerate(places):
            by_chunk.setdefault(chunk, []).append((position, row))
        for chunk, items in by_chunk.items():
            positions, rows = zip(*items, strict=True)
            out[list(positions)] = self._chunks[chunk]["vector"][list(rows)]
        return out

    def close(self) -> None:
        """Drop the memory maps."""
        self._chunks.clear()
        self._index.clear()
        self._seen.clear()


def safe_name(text: str) -> str:
    """``text`` as a file name: characters outside ``[A-Za-z0-9._-]`` become ``%XX``."""
    return re.sub(r"[^A-Za-z0-9._-]", lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, then rename it into place.

    A killed process never leaves a partial file under ``path``. There is no fsync (it made
    each batch wait on the disk): after a power cut, a chunk that never reached the disk reads
    as unreadable and is skipped, and its images are embedded again.
    """
    temporary = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with temporary.open("wb") as handle:
            write(handle)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda handle: handle.write(data))


def _remove_if_stale(path: Path) -> None:
    """Delete a temporary file left by a killed writer (not one another process is writing)."""
    try:
        if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()
    except FileNotFoundError:
        pass
