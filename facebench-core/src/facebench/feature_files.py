"""Feature files: one model-layer's ``(n images, D)`` float32 features in a format other tools read.

=========  ==========  ==========================================================  =========
format     extension   layout                                                      streamed
=========  ==========  ==========================================================  =========
``npy``    ``.npy``    the ``(n, D)`` float32 array; image order in ``images.txt``  yes
``hdf5``   ``.h5``     datasets ``features`` ``(n, D)`` and ``images`` (n names)    yes
``parquet`` ``.parquet`` columns ``image`` (name) and ``features`` (float32 list)   row groups
``mat``    ``.mat``    variables ``features`` (single) and ``images`` (cell array)  no
``csv``    ``.csv``    column ``image``, then one column per dimension ``0..D-1``   yes
=========  ==========  ==========================================================  =========

Streamed formats are written a block of rows at a time, so a layer never has to fit in memory
(``npy`` through :func:`numpy.lib.format.open_memmap`, ``hdf5`` by chunked dataset writes,
``parquet`` one row group per block, ``csv`` appended). MATLAB's v5 files are written whole:
:data:`WHOLE_FILE_LIMIT` bytes at most (MATLAB reads the ``hdf5`` files with ``h5read``).
CSV values are written with 9 significant digits, which read back to the same float32.
``hdf5`` needs h5py and ``parquet`` pyarrow: ``pip install "facebench-core[extract]"``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import ConfigError

FORMATS = {"npy": ".npy", "hdf5": ".h5", "parquet": ".parquet", "mat": ".mat", "csv": ".csv"}
OPTIONAL_MODULES = {"hdf5": "h5py", "parquet": "pyarrow"}
WHOLE_FILE_LIMIT = 2**30
"""Largest ``mat`` file (bytes of features): it is built in memory."""
EXTRA_HINT = 'pip install "facebench-core[extract]"'


def check_format(fmt: str) -> None:
    """Raise :class:`ConfigError` if ``fmt`` is unknown or its library is not installed."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown feature format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = OPTIONAL_MODULES.get(fmt)
    if module is not None:
        try:
            __import__(module)
        except ImportError:
            raise ConfigError(
                f"--format {fmt} needs {module}, which is not installed; {EXTRA_HINT} "
                f"(or choose --format npy)"
            ) from None


def check_size(fmt: str, n: int, dim: int, where: str) -> None:
    """Refuse a ``mat`` file above :data:`WHOLE_FILE_LIMIT` before anything is written."""
    size = n * dim * 4
    if fmt == "mat" and size > WHOLE_FILE_LIMIT:
        raise ConfigError(
            f"{where}: {n} x {dim} features take {size / 2**30:.1f} GiB, more than the "
            f"{WHOLE_FILE_LIMIT / 2**30:.0f} GiB a .mat file is built with in memory; use "
            f"--format hdf5 (MATLAB reads it with h5read) or npy"
        )


def write_features(
    path: Path,
    fmt: str,
    blocks: Iterable[np.ndarray],
    names: Sequence[str],
    dim: int,
) -> Path:
    """Write consecutive float32 row ``blocks`` (together ``len(names)`` rows of ``dim``) to ``path``."""
    n = len(names)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        _fill(array, blocks)
        array.flush()
        del array
    elif fmt == "hdf5":
        import h5py

        with h5py.File(path, "w") as handle:
            dataset = handle.create_dataset(
                "features",
                shape=(n, dim),
                dtype="float32",
                chunks=(max(1, min(n, 2**20 // max(dim, 1))), dim),
            )
            _fill(dataset, blocks)
            handle.create_dataset("images", data=list(names), dtype=h5py.string_dtype())
    elif fmt == "parquet":
        _write_parquet(path, blocks, names, dim)
    elif fmt == "mat":
        from scipy.io import savemat

        array = np.empty((n, dim), dtype=np.float32)
        _fill(array, blocks)
        savemat(path, {"features": array, "images": np.array(list(names), dtype=object)})
    elif fmt == "csv":
        _write_csv(path, blocks, names, dim)
    else:
        check_format(fmt)
    return path


def _fill(target: Any, blocks: Iterable[np.ndarray]) -> None:
    start = 0
    for block in blocks:
        target[start : start + len(block)] = block
        start += len(block)
    if start != len(target):
        raise RuntimeError(f"expected {len(target)} rows, got {start}")


def _write_parquet(path: Path, blocks: Iterable[np.ndarray], names: Sequence[str], dim: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("image", pa.string()), ("features", pa.list_(pa.float32(), dim))])
    start = 0
    with pq.ParquetWriter(path, schema) as writer:
        for block in blocks:
            rows = len(block)
            values = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(block).ravel()), dim)
            writer.write_table(
                pa.Table.from_arrays(
                    [pa.array(names[start : start + rows], pa.string()), values], schema=schema
                )
            )
            start += rows


def _write_csv(path: Path, blocks: Iterable[np.ndarray], names: Sequence[str], dim: int) -> None:
    start = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *range(dim)])
        for block in blocks:
            for name, row in zip(names[start : start + len(block)], block, strict=True):
                writer.writerow([name, *(f"{value:.9g}" for value in row.tolist())])
            start += len(block)


def read_features(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The image names and ``(n, D)`` float32 features of a file :func:`write_features` wrote
    (a ``.npy`` file's names come from the ``images.txt`` beside its model folder)."""
    path = Path(path)
    suffix = path.suffix
    if suffix == ".npy":
        names = (path.parent.parent / "images.txt").read_text(encoding="utf-8").splitlines()
        return names, np.load(path)
    if suffix == ".h5":
        import h5py

        with h5py.File(path, "r") as handle:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in handle["images"][()]]
            return names, handle["features"][()]
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        column = table.column("features").combine_chunks()
        dim = column.type.list_size
        return table.column("image").to_pylist(), column.flatten().to_numpy().reshape(-1, dim)
    if suffix == ".mat":
        from scipy.io import loadmat

        data = loadmat(path)
        return [str(n[0]) if np.ndim(n) else str(n) for n in data["images"].ravel()], data["features"]
    if suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(path, dtype={"image": str})
        return frame["image"].tolist(), frame.drop(columns="image").to_numpy(dtype=np.float32)
    raise ConfigError(f"{path}: not a feature file (extensions: {', '.join(FORMATS.values())})")
