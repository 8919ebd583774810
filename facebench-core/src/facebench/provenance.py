"""Which code computes a model's embeddings, for its cache identity and for results.json.

:func:`code_identity` names the distribution that provides a model class (name and version)
and digests the source of every module of the package that provides the class and of the
packages of its base classes outside facebench-core: all ``*.py`` files under the top-level
package's folders (or the module file itself, for a script or a module outside a package).
Editing ``_build_model`` or a network defined in a helper module of the package (an installed or
an editable package, or a script) changes the digest, so the cache recomputes instead of
returning the old embeddings.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import sys
from pathlib import Path
from typing import Any

SKIPPED_MODULES = frozenset({"builtins", "abc"})


def code_identity(cls: type) -> dict[str, Any]:
    """``{"distribution", "version", "modules", "packages", "source_sha256"}`` of the code
    behind ``cls``: ``packages`` are the top-level packages (or lone modules) digested."""
    modules = source_modules(cls)
    packages = list(dict.fromkeys(name.split(".")[0] for name in modules))
    distribution = providing_distribution(cls.__module__)
    return {
        "distribution": distribution,
        "version": distribution_version(distribution) if distribution else None,
        "modules": modules,
        "packages": packages,
        "source_sha256": source_digest(packages, cls),
    }


def source_modules(cls: type) -> list[str]:
    """The modules of ``cls`` and of its base classes, in method-resolution order, leaving out
    facebench-core's (``facebench`` and ``facebench.*``) and Python's own."""
    names: dict[str, None] = {}
    for klass in cls.__mro__:
        module = klass.__module__
        if module in SKIPPED_MODULES or module == "facebench" or module.startswith("facebench."):
            continue
        names[module] = None
    return list(names)


def source_digest(packages: list[str], cls: type) -> str:
    """sha256 over each package's source files (:func:`package_sources`): their paths relative to
    the package folder and their bytes. A module without a source file (e.g. one typed into a
    REPL) contributes ``cls``'s source if it can be found."""
    digest = hashlib.sha256()
    for name in packages:
        digest.update(name.encode() + b"\0")
        files = package_sources(name)
        if not files:
            digest.update(_class_source(cls) + b"\0")
        for relative, path in files:
            digest.update(relative.encode() + b"\0")
            digest.update(_file_digest(path) + b"\0")
    return digest.hexdigest()


_SOURCE_DIGESTS: dict[tuple[str, int, int], bytes] = {}


def _file_digest(path: Path) -> bytes:
    """sha256 of a source file's bytes, remembered per (path, size, mtime) in this process."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SOURCE_DIGESTS:
        _SOURCE_DIGESTS[key] = hashlib.sha256(path.read_bytes()).digest()
    return _SOURCE_DIGESTS[key]


def package_sources(name: str) -> list[tuple[str, Path]]:
    """``(relative path, file)`` of every ``*.py`` file of the imported top-level package ``name``
    (all its folders, ``__pycache__`` left out), or of the module file itself when ``name`` is
    not a package; sorted, so the digest does not depend on the file system's order."""
    module = sys.modules.get(name)
    if module is None:
        return []
    folders = getattr(module, "__path__", None)
    if folders is None:
        try:
            path = inspect.getsourcefile(module)
        except TypeError:
            path = None
        return [(Path(path).name, Path(path))] if path and Path(path).is_file() else []
    files: dict[str, Path] = {}
    for folder in map(Path, folders):
        for path in sorted(folder.rglob("*.py")):
            if "__pycache__" not in path.parts and path.is_file():
                files.setdefault(path.relative_to(folder).as_posix(), path)
    return sorted(files.items())


def _class_source(cls: type) -> bytes:
    try:
        return inspect.getsource(cls).encode()
    except (OSError, TypeError):
        return b"<no source>"


@functools.cache
def providing_distribution(module: str) -> str | None:
    """The installed distribution that provides ``module``'s top-level package, or None (a
    script, or a folder on ``sys.path``): the first whose ``top_level.txt`` names it, else whose
    ``RECORD`` lists it. Reads one small file per distribution (``packages_distributions()``
    stats every installed file: most of a warm re-run after imports)."""
    top = module.split(".")[0]
    unlisted = []
    for distribution in importlib.metadata.distributions():
        names = distribution.read_text("top_level.txt")
        if names is None:
            unlisted.append(distribution)
        elif top in names.split():
            return distribution.metadata["Name"]
    for distribution in unlisted:
        record = distribution.read_text("RECORD") or ""
        for line in record.splitlines():
            first = line.split(",", 1)[0].split("/", 1)[0]
            if first == top or first == f"{top}.py":
                return distribution.metadata["Name"]
    return None


def distribution_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


__all__ = [
    "code_identity",
    "distribution_version",
    "package_sources",
    "providing_distribution",
    "source_modules",
]
