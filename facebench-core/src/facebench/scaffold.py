"""``facebench new plugin NAME``: write a ready plugin package from the templates shipped in
``facebench/templates/plugin`` (package data, so installed wheels have them).

Every ``*.tmpl`` file is copied without that suffix, with ``{{distribution}}``, ``{{module}}``,
``{{prefix}}``, ``{{class_prefix}}``, ``{{core_version}}`` and ``{{next_core_version}}`` (the pin
``facebench-core>=0.2,<0.3``) filled in; a ``__module__`` folder becomes the package's import
name. facebench's own distribution names are refused.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from facebench.errors import ConfigError
from facebench.plugins import core_version, normalize_name

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
TEMPLATE_SUFFIX = ".tmpl"
OWN_DISTRIBUTIONS = frozenset(
    {"facebench", "facebench-core", "facebench-models", "facebench-tasks", "facebench-example-plugin"}
)


def plugin_names(name: str) -> dict[str, str]:
    """The template variables for the plugin called ``name`` (``lab-faces``)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"plugin name {name!r}: use lower-case letters, digits and single hyphens, starting with "
            f"a letter (e.g. lab-faces)"
        )
    if normalize_name(name) in OWN_DISTRIBUTIONS:
        raise ConfigError(
            f"plugin name {name!r} is a distribution of facebench itself; name yours after your lab "
            f"or project: facebench-<lab> (e.g. facebench-vislab)"
        )
    prefix = name.removeprefix("facebench-").removesuffix("-facebench") or name
    module = name.replace("-", "_")
    version = core_version()
    major, minor = [*version.split("."), "0"][:2] if version[:1].isdigit() else ("0", "2")
    return {
        "distribution": name,
        "module": module,
        "prefix": prefix,
        "class_prefix": "".join(part.capitalize() for part in prefix.split("-")),
        "core_version": f"{major}.{minor}",
        "next_core_version": f"{major}.{int(minor) + 1}" if minor.isdigit() else f"{int(major) + 1}",
    }


def write_plugin(name: str, parent: str | Path = ".", template_name: str = "plugin") -> Path:
    """Write the package ``parent/name`` from ``templates/<template_name>`` (``plugin``, or
    ``benchmark``: a benchmark package, see :mod:`facebench.benchmarks`) and return its folder;
    it must not exist yet."""
    names = plugin_names(name)
    target = Path(parent) / name
    if target.exists():
        raise ConfigError(f"{str(target)!r} already exists; choose another name or remove it")
    template = resources.files("facebench") / "templates" / template_name
    for source, relative in _walk(template, Path()):
        text = _fill(source.read_text(encoding="utf-8"), names, relative)
        destination = target / Path(*(names["module"] if p == "__module__" else p for p in relative.parts))
        destination = destination.with_name(destination.name.removesuffix(TEMPLATE_SUFFIX))
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    return target


def _walk(folder: Traversable, relative: Path) -> list[tuple[Traversable, Path]]:
    files: list[tuple[Traversable, Path]] = []
    for item in sorted(folder.iterdir(), key=lambda t: t.name):
        if item.is_dir():
            files += _walk(item, relative / item.name)
        elif item.name.endswith(TEMPLATE_SUFFIX):
            files.append((item, relative / item.name))
    return files


def _fill(text: str, names: dict[str, str], relative: Path) -> str:
    for key, value in names.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.search(r"\{\{\w+\}\}", text)
    if left:
        raise RuntimeError(f"template {relative}: unknown placeholder {left.group(0)}")
    return text


__all__ = ["plugin_names", "write_plugin"]
