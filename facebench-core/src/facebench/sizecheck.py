"""One input size per model: a batch holds images of one size, so a preprocessing that keeps each
photo's own shape (``resize`` an int or none, and ``crop=none``) is refused before any model is
built when the run's photos would come out in more than one size."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from facebench.errors import ConfigError
from facebench.preprocessing import Preprocessing

EXIF_ORIENTATION = 0x0112
TURNED = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height


def check_one_input_size(model: str, preprocessing: Preprocessing, paths: Sequence[Path]) -> None:
    """Raise :class:`ConfigError` naming two of ``paths`` that ``preprocessing`` brings to
    different sizes (read from the files' headers; nothing is decoded)."""
    if preprocessing.crop is not None or isinstance(preprocessing.resize, tuple):
        return
    first: dict[tuple[int, int], Path] = {}
    for path in paths:
        size = resized(preprocessing.resize, *upright_size(path))
        first.setdefault(size, path)
        if len(first) > 1:
            (a, a_path), (b, b_path) = first.items()
            raise ConfigError(
                f"model {model!r}: resize={preprocessing.resize}, crop=none gives the images more than "
                f"one size ({a_path} becomes {a[0]}x{a[1]}, {b_path} {b[0]}x{b[1]}, height x width), "
                f"but a batch holds one size; set crop=N (or [H, W]), or resize=[H, W]"
            )


def upright_size(path: Path) -> tuple[int, int]:
    """The height and width of the image at ``path`` once its EXIF orientation is applied."""
    with Image.open(path) as image:
        width, height = image.size
        if image.getexif().get(EXIF_ORIENTATION, 1) in TURNED:
            width, height = height, width
    return height, width


def resized(resize: int | None, height: int, width: int) -> tuple[int, int]:
    """The height and width torchvision's ``Resize(resize)`` gives (the shorter side becomes
    ``resize``, the longer one keeps the aspect ratio, truncated); None keeps the size."""
    if resize is None:
        return height, width
    short, long = sorted((height, width))
    longer = int(resize * long / short)
    return (resize, longer) if height <= width else (longer, resize)
