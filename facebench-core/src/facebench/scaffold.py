"""``facebench new plugin NAME``: write a ready plugin package from the templates shipped in
``facebench/templates/plugin`` (package data, so installed wheels have them).

Every ``*.tmpl`` file is copied without that suffix, with ``{{distribution}}``, ``{{module}}``,
``{{prefix}}``, ``{{class_prefix}}`` and ``{{core_version}}`` filled in; a ``__module__``
folder becomes the package's import name.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from facebench.errors import ConfigError
from facebench.plugins import core_version

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
TEMPLATE_SUFFIX = ".tmpl"


def plugin_names(name: str) -> dict[str, str]:
    """The template variables for the plugin called ``name`` (``lab-faces``)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"plugin name {name!r}: use lower-case letters, digits and single hyphens, starting with "
            f"a letter (e.g. lab-faces)"
        )
    prefix = name.removeprefix("facebench-").removesuffix("-facebench") or name
    module = name.replace("-", "_")
    version = core_version()
    major_minor = ".".join(version.split(".")[:2]) if version[:1].isdigit() else "0.2"
    return {
        "distribution": name,
        "module": module,
        "prefix": prefix,
        "class_prefix": "".join(part.capitalize() for part in prefix.split("-")),
        "core_version": major_minor,
    }


def write_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write the package ``parent/name`` and return its folder; it must not exist yet."""
    names = plugin_names(name)
    target = Path(parent) / name
    if target.exists():
        raise ConfigError(f"{str(target)!r} already exists; choose another name or remove it")
    template = resources.files("facebench") / "templates" / "plugin"
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
