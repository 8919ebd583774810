"""A contact sheet: aligned face crops in a grid, each captioned with its image's name, so a user
can look at what alignment did before trusting a run's numbers."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CELL = 128  # pixels per crop
CAPTION = 14  # pixels of caption under each crop
COLUMNS = 10
PER_SHEET = 100  # crops per sheet; more go to FILE-2.png, FILE-3.png, ...


def sheet_paths(target: Path, count: int, per_sheet: int = PER_SHEET) -> list[Path]:
    """The files ``count`` crops fill: ``target``, then ``<stem>-2<suffix>``, ``<stem>-3<suffix>``, ..."""
    pages = max(1, math.ceil(count / per_sheet))
    return [target] + [
        target.with_name(f"{target.stem}-{page}{target.suffix}") for page in range(2, pages + 1)
    ]


def write_contact_sheets(
    crops: Sequence[tuple[str, Path | None]], target: str | Path, per_sheet: int = PER_SHEET
) -> list[Path]:
    """Write ``(name, crop file or None: no face)`` in a grid of captioned cells (face-less ones
    grey and marked), :data:`PER_SHEET` per file; each file replaced atomically. Returns the files."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    paths = sheet_paths(target, len(crops), per_sheet)
    for page, path in enumerate(paths):
        sheet = _sheet(crops[page * per_sheet : (page + 1) * per_sheet])
        partial = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
        sheet.save(partial)
        os.replace(partial, path)
    return paths


def _sheet(crops: Sequence[tuple[str, Path | None]]) -> Image.Image:
    columns = min(COLUMNS, max(1, len(crops)))
    rows = max(1, math.ceil(len(crops) / columns))
    sheet = Image.new("RGB", (columns * CELL, rows * (CELL + CAPTION)), "white")
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default()
    for index, (name, crop) in enumerate(crops):
        x, y = index % columns * CELL, index // columns * (CELL + CAPTION)
        if crop is None:
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=(200, 200, 200))
            draw.text((x + CELL // 2, y + CELL // 2), "no face", fill=(160, 0, 0), font=font, anchor="mm")
        else:
            with Image.open(crop) as face:
                sheet.paste(face.convert("RGB").resize((CELL, CELL), Image.Resampling.BILINEAR), (x, y))
        draw.text((x + 2, y + CELL + 1), _fitted(draw, name, font, CELL - 4), fill="black", font=font)
    return sheet


def _fitted(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text``, its start cut to ``...`` until it fits ``width`` pixels (a name's end tells most)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(f"...{text}", font=font) > width:
        text = text[1:]
    return f"...{text}"
