"""Check, before any model is built, that every image of a run decodes.

Each file is opened and decoded by Pillow on a few threads. JPEGs are decoded in draft mode at
1/8 scale: libjpeg still reads every byte (a truncated or corrupt file fails), at a fraction of
the cost of a full decode. A file that passed is remembered per (path, size, modification
time), so a second run in the same process does not read it again. Every undecodable file is
listed in one :class:`~facebench.errors.DataError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from facebench.errors import DataError

PROGRESS_FROM = 1000  # images: a progress bar for sets at least this large
_DECODED: set[tuple[str, int, int]] = set()


def decode_problem(path: str | Path) -> str | None:
    """Why the image at ``path`` cannot be decoded, or None when it can."""
    try:
        stat = os.stat(path)
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if key in _DECODED:
            return None
        with Image.open(path) as image:
            image.draft("RGB", (1, 1))  # JPEG only: decode at the smallest scale
            image.load()
    except FileNotFoundError:
        return "does not exist"
    except IsADirectoryError:
        return "is a folder, not an image file"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return str(exc) or type(exc).__name__
    _DECODED.add(key)
    return None


def check_images_decode(paths: Sequence[str | Path], progress: bool = False, threads: int = 8) -> None:
    """Raise :class:`DataError` listing every path of ``paths`` that does not decode."""
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(Path(path) for path in paths))
    with (
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="facebench-decode-check") as pool,
        tqdm(
            total=len(unique),
            unit="img",
            desc="checking images",
            disable=not progress or len(unique) < PROGRESS_FROM,
        ) as bar,
    ):
        problems = []
        for path, problem in zip(unique, pool.map(decode_problem, unique), strict=True):
            bar.update()
            if problem is not None:
                problems.append(f"{str(path)!r} ({problem})")
    if problems:
        raise DataError(
            f"{len(problems)} of {len(unique)} images cannot be decoded: {'; '.join(problems)}. "
            f"Replace or remove these files, or drop the pairs that use them."
        )
