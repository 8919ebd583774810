"""Light previews of a run's plots for report.html: the page inlines a small picture of each
plot and links the full-size files, which stay beside it in the run folder.

A plot whose smallest file is at most :data:`INLINE_LIMIT` bytes is inlined as it is (crisp, and
no lighter picture would be much smaller); a larger one with a PNG becomes a WebP thumbnail that
fits ``box``; an SVG without a PNG is inlined as it is (there is nothing to rasterize it with).
"""

from __future__ import annotations

import base64
import io
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

INLINE_LIMIT = 24_000
OVERVIEW_BOX = (640, 480)  # the headline plots, shown open (figures are 600 CSS pixels wide)
SMALL_BOX = (360, 300)  # the others, behind "N more plot(s)"
WEBP_QUALITY = 75
MIME = {".svg": "image/svg+xml", ".png": "image/png"}


def preview_uris(plots: Sequence[tuple[Sequence[Path], tuple[int, int]]]) -> list[str]:
    """:func:`preview_uri` of each ``(files, box)``, drawn in threads (Pillow releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda plot: preview_uri(*plot), plots))


def preview_uri(files: Sequence[Path], box: tuple[int, int]) -> str:
    """A ``data:`` URI showing the plot saved as ``files`` (the same figure in several formats)."""
    smallest = min(files, key=lambda p: p.stat().st_size)
    png = next((p for p in files if p.suffix == ".png"), None)
    if png is None or smallest.stat().st_size <= INLINE_LIMIT:
        return data_uri(smallest)
    return "data:image/webp;base64," + base64.b64encode(thumbnail(png, box)).decode("ascii")


def thumbnail(png: Path, box: tuple[int, int]) -> bytes:
    """``png`` scaled down to fit ``box`` (never up), on white, as lossy WebP bytes."""
    from PIL import Image

    with Image.open(png) as image:
        image.thumbnail(box, Image.Resampling.LANCZOS)
        flat = image.convert("RGBA")
    white = Image.new("RGB", flat.size, "white")
    white.paste(flat, mask=flat.getchannel("A"))
    out = io.BytesIO()
    white.save(out, format="WEBP", quality=WEBP_QUALITY)
    return out.getvalue()


def data_uri(path: Path) -> str:
    """``path`` (an SVG or PNG) as it is, in a ``data:`` URI."""
    data = path.read_bytes()
    if path.suffix == ".svg":
        return "data:image/svg+xml;charset=utf-8," + urllib.parse.quote(data.decode("utf-8"), safe=" :/=,;'")
    return f"data:{MIME[path.suffix]};base64,{base64.b64encode(data).decode('ascii')}"
