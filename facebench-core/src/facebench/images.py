"""Images: decode any common file to upright RGB, hash files by content, feed a DataLoader.

Decoding applies the EXIF orientation and turns every mode into 8-bit RGB: grey (``L``),
16-bit and 32-bit grey (``I;16``, ``I``, scaled from 0..65535 to 0..255), float grey (``F``),
palette (``P``), ``CMYK``, and images with an alpha channel (``LA``, ``RGBA``, transparent
``P``), which are composited over a white background.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from facebench.errors import DataError

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def load_rgb(path: str | Path) -> Image.Image:
    """The image at ``path`` as an upright 8-bit RGB image, or a :class:`DataError` naming it."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except FileNotFoundError:
        raise DataError(
            f"image {str(path)!r} does not exist; check the pairs file and images folder"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"image {str(path)!r} cannot be decoded ({exc}); replace or remove the file, "
            f"or drop the pairs that use it"
        ) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (alpha composited over white, 16-bit scaled to 8-bit)."""
    if image.mode == "RGB":
        return image
    if image.mode in SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        return Image.fromarray(_grey_to_uint8(image)).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def _grey_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit / 32-bit / float grey pixels scaled to 0..255.

    16-bit modes map 0..65535 to 0..255. ``I`` (how some files hold 16-bit grey) is read as
    16-bit when any value exceeds 255, else as 8-bit. ``F`` is read as 0..1 when its values
    fit there, else as 0..255.
    """
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and pixels.max(initial=0) > 255):
        pixels = pixels / 257.0
    elif image.mode == "F" and pixels.size and pixels.min() >= 0.0 and pixels.max() <= 1.0:
        pixels = pixels * 255.0
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


_HASHES: dict[tuple[str, int, int], str] = {}


def content_hash(path: str | Path) -> str:
    """A 32-hex-digit BLAKE2b digest of the file's bytes (remembered per path, size, mtime)."""
    path = Path(path)
    with image_file_errors(path):
        stat = path.stat()
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHES:
            with path.open("rb") as handle:
                _HASHES[key] = hashlib.file_digest(
                    handle, lambda: hashlib.blake2b(digest_size=16)
                ).hexdigest()
    return _HASHES[key]


@contextmanager
def image_file_errors(path: Path) -> Iterator[None]:
    """Reading ``path`` inside: a missing file or a folder in its place -> a :class:`DataError` naming it."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(
            f"image {str(path)!r} does not exist; check the pairs file and images folder"
        ) from None
    except IsADirectoryError:
        raise DataError(f"image path {str(path)!r} is a folder, not an image file") from None


HASH_CHUNK = 256  # paths per thread-pool task (one task per path costs more than a remembered hash)


def content_hashes(paths: Sequence[str | Path], threads: int = 8) -> list[str]:
    """:func:`content_hash` of every path, read on a few threads."""
    if len(paths) <= HASH_CHUNK:
        return [content_hash(path) for path in paths]
    chunks = [paths[start : start + HASH_CHUNK] for start in range(0, len(paths), HASH_CHUNK)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        hashed = pool.map(lambda chunk: [content_hash(path) for path in chunk], chunks)
        return [digest for chunk in hashed for digest in chunk]


class ImageDataset(Dataset[tuple[int, Tensor]]):
    """``(index, preprocessed tensor)`` for each path, decoded in DataLoader workers."""

    def __init__(self, paths: Sequence[str | Path], preprocess: Callable[[Image.Image], Tensor]) -> None:
        self.paths = [Path(path) for path in paths]
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, Tensor]:
        path = self.paths[index]
        image = load_rgb(path)
        try:
            return index, self.preprocess(image)
        except DataError as exc:  # a model's preprocessing (e.g. face alignment) refused the image
            message = str(exc)
            raise DataError(message if str(path) in message else f"image {str(path)!r}: {message}") from None
