"""Each entry's options for ``facebench list --json``, cached so that listing imports no plugin code.

Reading an entry's options imports its target (torch, model libraries: seconds per plugin). The
options are kept in ``<user cache dir>/facebench/plugin-options.json`` beside what they were read
from: the entry's target, its plugin's name and version, facebench-core's version, the Python
version, and a fingerprint (path, size and modification time of every ``.py`` file) of each
package the target's class and base classes come from, facebench's own always included. Any
difference re-reads that entry alone, so the options stay exact after an upgrade or an edit of an
editable install. Errors are never cached; a cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

from facebench.describe import entry_options
from facebench.plugins import core_version
from facebench.registry import Entry

CACHE_FILE = "plugin-options.json"
FORMAT = 1


def cache_path() -> Path:
    """``platformdirs.user_cache_dir("facebench")/plugin-options.json`` (honours XDG_CACHE_HOME)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("facebench")) / CACHE_FILE


def package_fingerprint(package: str) -> str | None:
    """A digest of the path, size and mtime of every ``.py`` file of the top-level ``package``
    (found without importing it); None when it cannot be found."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    roots = list(spec.submodule_search_locations or [])
    files: list[str] = [] if roots else [spec.origin or ""]
    for root in roots:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
            files += [os.path.join(folder, name) for name in names if name.endswith(".py")]
    digest = hashlib.sha256()
    for path in sorted(files):
        try:
            stat = os.stat(path)
        except OSError:
            return None
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def source_packages(target: Any) -> list[str]:
    """The top-level packages (not the standard library's) ``target`` and its base classes are
    defined in, with ``facebench``."""
    objects = inspect.getmro(target) if inspect.isclass(target) else (target,)
    modules = {getattr(obj, "__module__", None) for obj in objects}
    packages = {m.partition(".")[0] for m in modules if m}
    return sorted({"facebench"} | (packages - set(sys.stdlib_module_names) - {"builtins"}))


class OptionCache:
    """The cached options of every listed entry; :meth:`options` reads through it."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = cache_path() if path is None else path
        self.records: dict[str, dict[str, Any]] = {}
        self.changed = False
        self._fingerprints: dict[str, str | None] = {}
        self._versions = [core_version(), ".".join(map(str, sys.version_info[:3]))]
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("format") == FORMAT and isinstance(data.get("entries"), dict):
                self.records = data["entries"]
        except (OSError, ValueError, AttributeError):
            pass

    def options(self, entry: Entry) -> list[dict[str, Any]]:
        """``entry_options(entry)``, from the cache when nothing it was read from has changed."""
        if not isinstance(entry.spec.target, str):
            return entry_options(entry)  # a callable registered in-process: already imported
        key = f"{entry.kind}:{entry.spec.name}"
        record = self.records.get(key)
        if record is not None and record.get("source") == self._source(entry) and self._unchanged(record):
            return record["options"]
        options = entry_options(entry)  # imports the target; raises on a target that cannot load
        packages = source_packages(entry.spec.load())
        self.records[key] = {
            "source": self._source(entry),
            "packages": {package: self._fingerprint(package) for package in packages},
            "options": options,
        }
        self.changed = True
        return options

    def save(self) -> None:
        """Write the cache atomically if it changed; a folder that cannot be written is skipped."""
        if not self.changed:
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"format": FORMAT, "entries": self.records}), encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            temporary.unlink(missing_ok=True)

    def _source(self, entry: Entry) -> list[str]:
        return [str(entry.spec.target), entry.plugin, entry.plugin_version, *self._versions]

    def _unchanged(self, record: dict[str, Any]) -> bool:
        packages = record.get("packages")
        return isinstance(packages, dict) and all(
            fingerprint is not None and self._fingerprint(package) == fingerprint
            for package, fingerprint in packages.items()
        )

    def _fingerprint(self, package: str) -> str | None:
        if package not in self._fingerprints:
            self._fingerprints[package] = package_fingerprint(package)
        return self._fingerprints[package]


__all__ = ["OptionCache", "cache_path", "package_fingerprint", "source_packages"]
