"""InsightFace ``.bin`` verification packs (lfw.bin, calfw.bin, cfp_fp.bin, agedb_30.bin, ...),
read without running code from the file.

A pack is a pickle of ``(bins, issame)``: ``bins`` the encoded JPEG/PNG bytes of ``2 * N``
images (pair ``k`` is images ``2k`` and ``2k + 1``), ``issame`` ``N`` booleans (a list, or a
numpy bool array). :class:`PackUnpickler` admits the bytes, lists, tuples and booleans such packs
hold (``_codecs.encode`` rebuilds bytes in protocol-2 pickles), and of numpy only what rebuilds an
array (``_reconstruct``, ``_frombuffer``, ``ndarray``, ``dtype``): any other global
(``os.system`` in a ``__reduce__``) is refused before it is called. The folds are
InsightFace's: ``sklearn.model_selection.KFold(10)`` without shuffling, contiguous tenths.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.errors import DataError

ALLOWED_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)
PACK_FOLDS = 10
IMAGE_SUFFIXES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG": ".png"}


class PackUnpickler(pickle.Unpickler):
    """Unpickles only what a ``.bin`` pack holds; any other global raises :class:`DataError`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DataError(
            f"the pack asks to load {module}.{name}, which a face verification pack never holds; "
            f"it was refused and nothing in it was run. Is this file really an InsightFace .bin pack?"
        )


def read_pack(path: str | Path) -> tuple[list[bytes], list[bool]]:
    """The images (encoded bytes) and the same/different label of each pair of a ``.bin`` pack."""
    path = Path(path)
    try:
        data = PackUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    except FileNotFoundError:
        raise DataError(f".bin pack {str(path)!r} does not exist") from None
    except Exception as exc:  # truncated or not a pickle at all
        raise DataError(f"{path}: not a readable .bin pack ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise DataError(f"{path}: a .bin pack holds (images, issame); found {type(data).__name__}")
    bins, issame = data
    images = [_image_bytes(item, path, i) for i, item in enumerate(_sequence(bins, path, "images"))]
    labels = _labels(issame, path)
    if len(images) != 2 * len(labels):
        raise DataError(
            f"{path}: {len(images)} images for {len(labels)} pairs; a pack holds two images per pair"
        )
    return images, labels


def unpack(path: str | Path, folder: str | Path) -> pd.DataFrame:
    """Write a pack's images to ``folder/images`` and return its pairs (``img1, img2, same, fold``)."""
    images, labels = read_pack(path)
    out = Path(folder) / "images"
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for index, data in enumerate(images):
        name = f"{index:05d}{_suffix(data, path, index)}"
        target = out / name
        if not target.is_file() or target.read_bytes() != data:
            temporary = target.with_name(f".{name}.{os.getpid()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, target)
        names.append(name)
    folds = np.zeros(len(labels), dtype=int)
    for fold, indices in enumerate(np.array_split(np.arange(len(labels)), PACK_FOLDS), start=1):
        folds[indices] = fold
    return pd.DataFrame(
        {
            "img1": names[0::2],
            "img2": names[1::2],
            "same": [int(label) for label in labels],
            "fold": folds,
        }
    )


def _sequence(value: Any, path: Path, what: str) -> list[Any]:
    if isinstance(value, np.ndarray):
        return list(value)
    if not isinstance(value, list | tuple):
        raise DataError(f"{path}: the pack's {what} are a {type(value).__name__}, not a list")
    return list(value)


def _image_bytes(item: Any, path: Path, index: int) -> bytes:
    if isinstance(item, bytes | bytearray):
        return bytes(item)
    if isinstance(item, np.ndarray) and item.dtype == np.uint8:
        return item.tobytes()
    raise DataError(f"{path}: image {index} is a {type(item).__name__}, not encoded image bytes")


def _labels(issame: Any, path: Path) -> list[bool]:
    if isinstance(issame, np.ndarray) and issame.dtype != np.bool_:
        raise DataError(f"{path}: issame is an array of {issame.dtype}, not of booleans")
    labels = _sequence(issame, path, "issame labels")
    if not all(isinstance(label, bool | np.bool_) for label in labels):
        raise DataError(f"{path}: issame holds values other than True/False")
    return [bool(label) for label in labels]


def _suffix(data: bytes, path: Path, index: int) -> str:
    for magic, suffix in IMAGE_SUFFIXES.items():
        if data.startswith(magic):
            return suffix
    raise DataError(f"{path}: image {index} is neither a JPEG nor a PNG (first bytes {data[:4]!r})")
