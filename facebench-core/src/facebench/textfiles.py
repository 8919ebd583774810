"""Text files facebench reads (pairs files, experiment files, tables) must be UTF-8: read them,
or say which file, where, and how to convert it."""

from __future__ import annotations

from pathlib import Path

from facebench.errors import FacebenchError


def read_utf8(path: str | Path, kind: str, error: type[FacebenchError]) -> str:
    """The text of ``path`` (a UTF-8 byte-order mark is dropped), or ``error`` naming the file,
    the first byte that is not UTF-8 (its line), and how to re-save the file as UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(
            f"{kind} {str(path)!r} is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line}); "
            f"re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 OLD > NEW` (or 'CSV UTF-8' in "
            f"a spreadsheet's Save As)"
        ) from None
