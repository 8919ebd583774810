"""File-system faults in plain words: why a write failed, and folders checked for writing up front.

A full disk, a read-only file system or a missing permission shows up as an ``OSError`` whose
text names a temporary file (or, from NumPy, only ``4 requested and 3 written``). These helpers
turn it into a sentence naming the file or folder facebench was writing, the reason, and the fix.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

REASONS = {
    errno.ENOSPC: "no space left on the device (disk full)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a parent is a file, not a folder",
}


class FileWriteError(OSError):
    """A write that failed, with the file it was for, the reason and the fix in its message."""

    def __init__(self, errno_: int | None, message: str, filename: str) -> None:
        super().__init__(errno_, message, filename)
        self.message = message

    def __str__(self) -> str:
        return self.message


def reason(exc: OSError) -> str:
    """Why ``exc`` happened, in words (``no space left on the device (disk full)``)."""
    if exc.errno in REASONS:
        return REASONS[exc.errno]
    return exc.strerror or str(exc) or type(exc).__name__


def write_error(exc: OSError, target: str | Path, fix: str) -> FileWriteError:
    """``exc`` (raised while writing ``target``) as a :class:`FileWriteError`:
    ``cannot write <target>: <reason>; <fix>``."""
    if isinstance(exc, FileWriteError):
        return exc
    return FileWriteError(exc.errno, f"cannot write {target}: {reason(exc)}; {fix}", str(target))


def check_writable_folder(folder: str | Path) -> str | None:
    """Why files cannot be created in ``folder`` (created on first write), or None when they can.

    The nearest existing ancestor must be a folder in which a (deleted at once) probe folder can
    be created: that catches a parent that is a file, a read-only file system and permissions.
    """
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".facebench-probe-", dir=existing))
    except OSError as exc:
        return f"cannot create files in {existing}: {reason(exc)}"
    return None
