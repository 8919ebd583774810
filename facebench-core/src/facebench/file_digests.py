"""The sha256 of a file a model reads (its weights), remembered across processes.

Hashing a checkpoint of hundreds of megabytes took most of a warm re-run. :func:`file_sha256`
remembers each digest in a small file under the cache folder
(``platformdirs.user_cache_dir("facebench")/file-digests``), named by a hash of the file's
resolved path, device, inode, size, modification and change times (``st_mtime_ns``,
``st_ctime_ns``). Rewriting, replacing or touching the file changes one of them (the change
time cannot be set back by the user), so a remembered digest is used only for the very same
file; anything else is hashed again. A memo that cannot be read or written is skipped silently:
the digest is then computed, never guessed.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from facebench.errors import WeightsError

MEMO_FOLDER = "file-digests"

_IN_PROCESS: dict[str, str] = {}


def default_memo_dir() -> Path:
    """``platformdirs.user_cache_dir("facebench")/file-digests``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("facebench")) / MEMO_FOLDER


def file_sha256(path: str | Path, memo_dir: Path | None = None) -> str:
    """The sha256 (hex) of ``path``'s bytes; remembered in ``memo_dir`` (default
    :func:`default_memo_dir`) under the file's identity on disk (see the module docstring)."""
    path = Path(path)
    try:
        resolved = path.resolve()
        stat = resolved.stat()
    except FileNotFoundError:
        raise WeightsError(f"weights file {str(path)!r} does not exist; check weights_path") from None
    fields = (str(resolved), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    key = hashlib.sha256("\0".join(map(str, fields)).encode()).hexdigest()
    if key in _IN_PROCESS:
        return _IN_PROCESS[key]
    memo = (memo_dir if memo_dir is not None else default_memo_dir()) / key
    digest = _read_memo(memo)
    if digest is None:
        with resolved.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        _write_memo(memo, digest)
    _IN_PROCESS[key] = digest
    return digest


def _read_memo(memo: Path) -> str | None:
    try:
        text = memo.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else None


def _write_memo(memo: Path, digest: str) -> None:
    temporary = memo.with_name(f".tmp-{uuid.uuid4().hex}")
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(digest)
        os.replace(temporary, memo)
    except OSError:
        temporary.unlink(missing_ok=True)


__all__ = ["default_memo_dir", "file_sha256"]
