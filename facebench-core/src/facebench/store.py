"""A disk-backed, append-only embedding store that doubles as the cache.

Layout, under the cache folder (default ``platformdirs.user_cache_dir("facebench")/embeddings``)::

    v2/<model identity>/model.json                      what the model was (for people)
    v2/<model identity>/<layer>@<reduction>@<dtype>/    one table per layer, reduction, dtype
        <time>-<pid>-<random>-<crc32>.npy               one chunk per written batch

A chunk is a NumPy structured array: each record holds an image's content hash (``key``)
and its embedding (``vector``), so one file carries both and is written atomically (to a
temporary name in the same folder, then ``os.replace``): a killed run leaves whole chunks
or nothing, and the next run resumes from the chunks that exist. Chunks are read through
memory maps, so a table never has to fit in RAM; only the rows asked for are read.

Faults: the CRC-32 of a chunk's bytes is part of its name and is checked before the chunk's
rows are used (:meth:`EmbeddingTable.verify`, once per chunk and process). A chunk that cannot
be read, or whose bytes no longer match its checksum, is renamed aside once (``*.unreadable``,
``*.corrupt``, never read again) with a warning, and its images count as missing, so they are
embedded again. A cache folder that cannot be written (disk full, read-only, no permission)
raises a :class:`ConfigError` naming the folder and ``--cache-dir`` / ``--no-cache``. Layout
``v1`` (chunks without checksums) is not read.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import time
import uuid
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import ConfigError
from facebench.filesystem import reason

LAYOUT_VERSION = "v2"
CHECKSUM_NAME = re.compile(r"-([0-9a-f]{8})\.npy$")
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
            self._tables[key] = EmbeddingTable(
                folder, np.dtype(self.dtype), cache_root=self.root, temporary=self.temporary
            )
        return self._tables[key]

    def write_metadata(self, identity: str, description: dict[str, Any]) -> None:
        """Record what model ``identity`` is, for people browsing the cache."""
        folder = self.root / LAYOUT_VERSION / identity
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(folder / "model.json", json.dumps(description, indent=2, default=str).encode())
        except OSError as exc:
            raise cache_write_error(exc, self.root, self.temporary) from exc

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
    """The ``(image key -> vector)`` rows of one model, layer, reduction and dtype.

    ``cache_root`` (the store's folder) and ``temporary`` only shape the message of a failed write.
    """

    def __init__(
        self,
        folder: Path,
        dtype: np.dtype[Any],
        *,
        cache_root: Path | None = None,
        temporary: bool = False,
    ) -> None:
        self.folder = folder
        self.dtype = dtype
        self.cache_root = cache_root or folder
        self.temporary = temporary
        self._chunks: list[np.ndarray | None] = []  # None: dropped (failed its checksum)
        self._paths: list[Path] = []
        self._verified: set[int] = set()
        self._index: dict[str, tuple[int, int]] = {}
        self._seen: set[str] = set()
        self.refresh()

    @property
    def dim(self) -> int | None:
        """The embedding width, or None while the table is empty."""
        chunk = next((chunk for chunk in self._chunks if chunk is not None), None)
        return None if chunk is None else int(chunk.dtype["vector"].shape[0])

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

    def _add_chunk(self, path: Path, keys: Sequence[str] | None = None) -> int | None:
        self._seen.add(path.name)
        try:
            if not CHECKSUM_NAME.search(path.name):
                raise ValueError("its name carries no checksum")
            chunk = np.load(path, mmap_mode="r", allow_pickle=False)
            if chunk.dtype.names != ("key", "vector"):
                raise ValueError(f"fields {chunk.dtype.names}")
        except (OSError, ValueError, EOFError) as exc:  # e.g. emptied by a power cut: recompute its rows
            _move_aside(path, "unreadable", str(exc))
            return None
        number = len(self._chunks)
        self._chunks.append(chunk)
        self._paths.append(path)
        if keys is None:
            keys = [key.decode() for key in chunk["key"].tolist()]
        for row, key in enumerate(keys):
            self._index.setdefault(key, (number, row))
        return number

    def verify(self, keys: Iterable[str]) -> None:
        """Check the checksum of every chunk holding one of ``keys`` (each chunk once).

        A chunk whose bytes do not match is renamed aside with a warning and its rows are
        dropped: its images then count as :meth:`missing` and are embedded again.
        """
        numbers = {self._index[key][0] for key in keys if key in self._index} - self._verified
        for number in sorted(numbers):
            path = self._paths[number]
            expected = int(CHECKSUM_NAME.search(path.name).group(1), 16)  # type: ignore[union-attr]
            try:
                actual: int | None = _crc32(path)
            except OSError:
                actual = None
            if actual == expected:
                self._verified.add(number)
                continue
            self._chunks[number] = None
            self._index = {key: place for key, place in self._index.items() if place[0] != number}
            if actual is not None:
                _move_aside(path, "corrupt", f"its bytes do not match its checksum {expected:08x}")

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
        buffer = io.BytesIO()
        np.save(buffer, records, allow_pickle=False)
        data = buffer.getbuffer()
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}-{zlib.crc32(data):08x}.npy"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.folder / name, lambda handle: handle.write(data))
        except OSError as exc:
            raise cache_write_error(exc, self.cache_root, self.temporary) from exc
        number = self._add_chunk(self.folder / name, keys)
        if number is not None:
            self._verified.add(number)

    def read(self, keys: Sequence[str], columns: slice | None = None) -> np.ndarray:
        """The float32 rows of ``keys``, shape ``(len(keys), dim)``.

        ``columns`` (a slice of the embedding's dimensions) reads only those columns, so a
        block of many rows of a wide layer can be read a few columns at a time.
        """
        self.verify(keys)
        try:
            places = [self._index[key] for key in keys]
        except KeyError as exc:
            raise KeyError(f"{self.folder}: no embedding for image key {exc.args[0]}") from None
        columns = slice(None) if columns is None else columns
        width = len(range(*columns.indices(self.dim or 0)))
        out = np.empty((len(keys), width), dtype=np.float32)
        by_chunk: dict[int, list[tuple[int, int]]] = {}
        for position, (chunk, row) in enumerate(places):
            by_chunk.setdefault(chunk, []).append((position, row))
        for chunk, items in by_chunk.items():
            positions, rows = zip(*items, strict=True)
            out[list(positions)] = self._chunks[chunk]["vector"][:, columns][list(rows)]
        return out

    def close(self) -> None:
        """Drop the memory maps."""
        self._chunks.clear()
        self._paths.clear()
        self._verified.clear()
        self._index.clear()
        self._seen.clear()


def cache_write_error(exc: OSError, root: Path, temporary: bool) -> ConfigError:
    """A failed cache write as one sentence: the cache folder, the reason and the way out."""
    if temporary:
        fix = "free space there, or set TMPDIR to a folder with room (--no-cache uses a temporary folder)"
    else:
        fix = (
            "free space there, choose another cache folder with --cache-dir DIR "
            "(cache_dir = ... in an experiment file), or run with --no-cache (cache = false)"
        )
    return ConfigError(f"cannot write to the embedding cache {root}: {reason(exc)}; {fix}")


def _move_aside(path: Path, label: str, why: str) -> None:
    """Rename a bad chunk to ``<name>.<label>`` (never read again) and say so, once."""
    target = path.with_name(f"{path.name}.{label}")
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return  # another process moved it already
    except OSError as exc:
        warnings.warn(
            f"ignoring {label} embedding chunk {path} ({why}); it could not be moved aside "
            f"({reason(exc)}), so this warning will repeat: delete the file",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    warnings.warn(
        f"{label} embedding chunk {path} ({why}) moved aside to {target.name}; "
        f"its images are embedded again. The file can be deleted.",
        RuntimeWarning,
        stacklevel=3,
    )


def _crc32(path: Path) -> int:
    checksum = 0
    with path.open("rb") as handle:
        while block := handle.read(16 * 2**20):
            checksum = zlib.crc32(block, checksum)
    return checksum


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
