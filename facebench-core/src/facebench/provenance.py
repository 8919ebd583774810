"""Which code computes a model's embeddings, for its cache identity and for results.json.

:func:`code_identity` names the distribution that provides a model class (name and version)
and digests the source of the class's module and of the modules of its base classes outside
facebench-core. Editing ``_build_model`` (an installed or an editable package, or a script)
changes the digest, so the cache recomputes instead of returning the old embeddings.

Code the class calls in *other* modules (a network defined in a second file of the package)
is covered by the distribution's version only: bump it when you change such code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import sys
from typing import Any

SKIPPED_MODULES = frozenset({"builtins", "abc"})


def code_identity(cls: type) -> dict[str, Any]:
    """``{"distribution", "version", "modules", "source_sha256"}`` of the code behind ``cls``."""
    modules = source_modules(cls)
    distribution = providing_distribution(cls.__module__)
    return {
        "distribution": distribution,
        "version": distribution_version(distribution) if distribution else None,
        "modules": modules,
        "source_sha256": source_digest(modules, cls),
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


def source_digest(modules: list[str], cls: type) -> str:
    """sha256 over each module's name and source file bytes (a module without a source file,
    e.g. one typed into a REPL, contributes ``cls``'s source if it can be found)."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode() + b"\0")
        digest.update(_module_source(name, cls) + b"\0")
    return digest.hexdigest()


def _module_source(name: str, cls: type) -> bytes:
    module = sys.modules.get(name)
    try:
        path = inspect.getsourcefile(module) if module is not None else None
        if path:
            with open(path, "rb") as handle:
                return handle.read()
    except (OSError, TypeError):
        pass
    try:
        return inspect.getsource(cls).encode()
    except (OSError, TypeError):
        return b"<no source>"


@functools.cache
def _distributions_by_package() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def providing_distribution(module: str) -> str | None:
    """The installed distribution that provides ``module``'s top-level package, or None (a
    script, or a folder on ``sys.path``)."""
    candidates = _distributions_by_package().get(module.split(".")[0], [])
    return candidates[0] if candidates else None


def distribution_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


__all__ = ["code_identity", "distribution_version", "providing_distribution", "source_modules"]
