"""Read pairs files as labs publish them, and check the columns a task needs.

:func:`read_pairs_file` reads, without hand-editing:

* comma-separated files whatever their extension (``.csv``, ``.txt``), tab-separated files,
  and whitespace-separated lists (``a.jpg b.jpg`` per line); Windows line endings and a UTF-8
  byte-order mark;
* files with or without a header line. A file has no header when the first two fields of its
  first line both look like image files (``.jpg``, ``.png``, ...); its columns are then named
  ``img1``, ``img2``, ``column3``, ...;
* unnamed columns (a leading index column written by ``DataFrame.to_csv``), which are dropped;
* whitespace around column names and values (``"Frontal - Half Left "``), which is stripped.

Values are read as text; a column other than ``img1``/``img2`` whose every value is a number
becomes numeric. Empty cells are missing values. A pair listed twice with the same value in every
column (``a b`` and ``b a`` count as the same pair) is kept but warned about, with the count: it
enters every statistic twice (a duplicated pair once raised a cross-validated accuracy from
0.897 to 0.917).

:func:`read_table_file` reads an *images table* (one row per image: an ``image`` column and any
per-image columns such as identity, gender or condition) with the same quirks; a header-less
file's first column is ``image``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.errors import DataError
from facebench.textfiles import read_utf8

IMAGE_COLUMNS = ("img1", "img2")
TABLE_IMAGE_COLUMN = "image"
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)
UNNAMED_COLUMN = re.compile(r"^(Unnamed: \d+(_level_\d+)?)?$")
TRUE_WORDS = frozenset({"true", "yes", "same"})
FALSE_WORDS = frozenset({"false", "no", "different", "diff"})
MAX_LISTED = 5


def read_pairs_file(path: str | Path) -> pd.DataFrame:
    """The pairs in ``path`` as a DataFrame, quirks handled (see the module docstring)."""
    frame = _read_file(Path(path), "pairs file", "image pair", "pairs", IMAGE_COLUMNS)
    warn_repeated_pairs(frame, path)
    return frame


class RepeatedPairsWarning(UserWarning):
    """A pairs file lists the same pair, with the same values, more than once."""


def warn_repeated_pairs(frame: pd.DataFrame, source: str | Path) -> int:
    """Warn when rows repeat an earlier row (the two images in either order, every other
    column equal); return how many rows do."""
    if not set(IMAGE_COLUMNS) <= set(frame.columns):
        return 0
    ordered = frame.copy()
    first, second = (frame[c].astype(str) for c in IMAGE_COLUMNS)
    ordered["img1"], ordered["img2"] = (
        first.where(first <= second, second),
        second.where(first <= second, first),
    )
    repeated = ordered.duplicated().to_numpy()
    if repeated.any():
        warnings.warn(
            f"{source}: {int(repeated.sum())} row(s) repeat an earlier pair with the same values: "
            f"{_rows_text(repeated)}. Each copy counts in every statistic; delete the copies "
            f"unless the repetition is meant.",
            RepeatedPairsWarning,
            stacklevel=3,
        )
    return int(repeated.sum())


def read_table_file(path: str | Path) -> pd.DataFrame:
    """The images table in ``path``: an ``image`` column (no empty cell, no name twice) and any
    per-image columns, quirks handled as for pairs files."""
    path = Path(path)
    frame = _read_file(path, "images table", "image", "images", (TABLE_IMAGE_COLUMN,))
    require_columns(frame, (TABLE_IMAGE_COLUMN,), path)
    check_no_missing(frame, TABLE_IMAGE_COLUMN, path)
    repeated = frame[TABLE_IMAGE_COLUMN].duplicated().to_numpy()
    if repeated.any():
        names = ", ".join(repr(n) for n in frame[TABLE_IMAGE_COLUMN][repeated].unique()[:MAX_LISTED])
        raise DataError(
            f"{path}: an images table lists each image once; {names} appear more than once "
            f"({_rows_text(repeated).replace('pair', 'row')})"
        )
    return frame


def _read_file(path: Path, kind: str, unit: str, units: str, image_columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{kind} {str(path)!r} does not exist (or is not a file)")
    text = read_utf8(path, kind, DataError)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{kind} {str(path)!r} is empty; it needs one line per {unit}")
    separator = _separator(lines[0])
    fields = _split(lines[0], separator)
    width = len(image_columns)
    has_header = not (len(fields) >= width and all(_looks_like_image(f) for f in fields[:width]))
    try:
        frame = pd.read_csv(
            path,
            sep=separator,
            header=0 if has_header else None,
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            skip_blank_lines=True,
            encoding="utf-8-sig",
            engine="python" if separator == r"\s+" else "c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{kind} {str(path)!r} could not be read as a table: {exc}") from exc
    if not has_header:
        frame.columns = [*image_columns, *(f"column{i + 1}" for i in range(width, frame.shape[1]))][
            : frame.shape[1]
        ]
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = frame.loc[:, [not UNNAMED_COLUMN.match(c) for c in frame.columns]]
    if frame.empty:
        raise DataError(
            f"{kind} {str(path)!r} has a header but no {units} "
            f"(columns: {columns_text(frame)}); add one line per {unit}"
        )
    return _tidy(frame, (*IMAGE_COLUMNS, TABLE_IMAGE_COLUMN))


def _separator(first_line: str) -> str:
    if "," in first_line:
        return ","
    if "\t" in first_line:
        return "\t"
    return r"\s+"


def _split(line: str, separator: str) -> list[str]:
    parts = line.split() if separator == r"\s+" else line.split(separator)
    return [p.strip().strip('"') for p in parts]


def _looks_like_image(field: str) -> bool:
    return Path(field).suffix.lower() in IMAGE_SUFFIXES


def _tidy(frame: pd.DataFrame, text_columns: tuple[str, ...]) -> pd.DataFrame:
    """Strip whitespace, mark empty cells missing, make all-number columns (but image names) numeric."""
    tidy = {}
    for column in frame.columns:
        values = frame[column].astype("string").str.strip().replace("", pd.NA)
        if column not in text_columns and values.notna().any():
            try:
                numbers = pd.to_numeric(values)
            except (ValueError, TypeError):
                pass
            else:
                integer = pd.api.types.is_integer_dtype(numbers) and not numbers.isna().any()
                tidy[column] = numbers.to_numpy(dtype="int64" if integer else "float64", na_value=np.nan)
                continue
        tidy[column] = values.astype(object).where(values.notna(), None)
    return pd.DataFrame(tidy, index=pd.RangeIndex(len(frame)))


def columns_text(frame: pd.DataFrame) -> str:
    return ", ".join(repr(c) for c in frame.columns) or "none"


def require_columns(
    frame: pd.DataFrame,
    columns: Sequence[str],
    source: str | Path,
    option_for: dict[str, str] | None = None,
) -> None:
    """Raise :class:`DataError` naming the columns that exist when one of ``columns`` is missing.

    ``option_for`` maps a column to the task option that chooses it, for the hint.
    """
    missing = [c for c in columns if c not in frame.columns]
    if not missing:
        return
    message = (
        f"{source}: no column {', '.join(repr(c) for c in missing)}; "
        f"the columns there are: {columns_text(frame)}."
    )
    options = [f"{option_for[c]}=<column>" for c in missing if option_for and c in option_for]
    if options:
        message += f" Choose the column with the task option {', '.join(options)}."
    if any(c in IMAGE_COLUMNS for c in missing):
        message += " The image columns must be called 'img1' and 'img2'."
    raise DataError(message)


def _rows_text(mask: np.ndarray | pd.Series) -> str:
    rows = np.flatnonzero(np.asarray(mask)) + 1
    listed = ", ".join(str(r) for r in rows[:MAX_LISTED])
    more = f" and {len(rows) - MAX_LISTED} more" if len(rows) > MAX_LISTED else ""
    return f"pair{'s' if len(rows) > 1 else ''} {listed}{more} (counting pairs from 1)"


def check_no_missing(frame: pd.DataFrame, column: str, source: str | Path) -> None:
    """Raise :class:`DataError` if ``column`` has empty cells."""
    missing = frame[column].isna().to_numpy()
    if missing.any():
        raise DataError(f"{source}: column {column!r} is empty for {_rows_text(missing)}")


def binary_labels(frame: pd.DataFrame, column: str, source: str | Path) -> np.ndarray:
    """``column`` as booleans (True = same identity): 1/0, true/false, yes/no, same/different."""
    check_no_missing(frame, column, source)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float)
        bad = ~np.isin(numbers, (0.0, 1.0))
        if not bad.any():
            return numbers == 1.0
    else:
        words = values.astype(str).str.strip().str.lower()
        bad = ~words.isin(TRUE_WORDS | FALSE_WORDS).to_numpy()
        if not bad.any():
            return words.isin(TRUE_WORDS).to_numpy()
    examples = ", ".join(repr(v) for v in values[bad].drop_duplicates().tolist()[:MAX_LISTED])
    raise DataError(
        f"{source}: column {column!r} must hold same/different labels (1/0, true/false); "
        f"found {examples} at {_rows_text(bad)}"
    )


def numeric_column(frame: pd.DataFrame, column: str, source: str | Path) -> np.ndarray:
    """``column`` as finite floats, or :class:`DataError` naming the rows that are not."""
    check_no_missing(frame, column, source)
    numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numbers)
    if bad.any():
        examples = ", ".join(repr(v) for v in frame[column][bad].drop_duplicates().tolist()[:MAX_LISTED])
        raise DataError(
            f"{source}: column {column!r} must hold numbers; found {examples} at {_rows_text(bad)}"
        )
    return numbers


def text_column(frame: pd.DataFrame, column: str, source: str | Path) -> pd.Series:
    """``column`` as stripped strings (numbers become their text), no empty cells."""
    check_no_missing(frame, column, source)
    return frame[column].map(lambda v: format(v, "g") if isinstance(v, float) else str(v)).str.strip()
