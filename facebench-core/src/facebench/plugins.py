"""Finding and loading plugins: entry points of group ``facebench``, never crashing on a bad one.

Each entry point names a module of ``@facebench.hookimpl`` functions. A plugin that fails to
import (any exception, ``SystemExit`` included; only ``KeyboardInterrupt`` passes) is recorded as
``broken`` with its whole error on one line, a hint naming the fix where the error is a
known authoring mistake, and its traceback (``facebench list --traceback``); one named in
``FACEBENCH_DISABLE_PLUGINS`` (comma-separated distribution or entry-point names) is recorded
as ``disabled`` and never imported. The core's own metrics are registered as the built-in
plugin ``facebench-core``.

pluggy's ``PluginManager.load_setuptools_entrypoints`` stops at the first plugin that fails to
import, so the loop over entry points is written here to record and skip such plugins instead.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Literal

import importlib_metadata
import pluggy

from facebench import hookspecs

ENTRY_POINT_GROUP = "facebench"
DISABLE_ENV_VAR = "FACEBENCH_DISABLE_PLUGINS"
BUILTIN_DISTRIBUTION = "facebench-core"
BUILTIN_MODULE = "facebench.builtins"

PluginStatus = Literal["ok", "broken", "disabled"]
MAX_ERROR_CHARS = 600


@dataclass
class PluginInfo:
    """One loaded (or skipped) plugin, as ``facebench list plugins`` shows it.

    ``hooks`` are the hooks it implements and ``provides`` how many entries of each kind it
    registered; ``warning`` says why an ``ok`` plugin is probably not what its author meant.
    """

    name: str
    version: str
    entry_point: str
    status: PluginStatus = "ok"
    error: str | None = None
    traceback: str | None = None
    warning: str | None = None
    hooks: list[str] = field(default_factory=list)
    provides: dict[str, int] = field(default_factory=dict)

    def mark_broken(self, exc: BaseException, hint: str = "") -> None:
        """Record ``exc`` (and ``hint``, what to do about it) as the reason this plugin is unusable."""
        self.status = "broken"
        self.error = full_message(exc) + (f"; {hint}" if hint else "")
        self.traceback = "".join(traceback.format_exception(exc))

    def add_warning(self, text: str) -> None:
        self.warning = f"{self.warning}; {text}" if self.warning else text

    def to_dict(self, with_traceback: bool = False) -> dict[str, object]:
        data: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "entry_point": self.entry_point,
            "hooks": list(self.hooks),
            "provides": dict(self.provides),
        }
        for key in ("error", "warning") + (("traceback",) if with_traceback else ()):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


def full_message(exc: BaseException) -> str:
    """``TypeName: every line of the message, joined by '; '`` (pluggy puts the cause last)."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r}) while being imported"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {'; '.join(lines)}" if lines else type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def normalize_name(name: str) -> str:
    """Distribution names compare as PEP 503 normalises them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def disabled_names(environ: dict[str, str] | None = None) -> set[str]:
    """The normalised names listed in ``FACEBENCH_DISABLE_PLUGINS``."""
    raw = (os.environ if environ is None else environ).get(DISABLE_ENV_VAR, "")
    return {normalize_name(part.strip()) for part in raw.split(",") if part.strip()}


def new_plugin_manager() -> pluggy.PluginManager:
    """A plugin manager that knows facebench's hook specs and nothing else."""
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def hook_names() -> list[str]:
    """The names of every hook facebench calls (its hook specs)."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return sorted(name for name, member in inspect.getmembers(hookspecs) if hasattr(member, marker))


def validation_hint(exc: pluggy.PluginValidationError) -> str:
    """What to change for pluggy's two authoring errors: a misspelled hook, a wrong argument."""
    text = str(exc)
    unknown = re.search(r"unknown hook '(\w+)'", text)
    if unknown:
        close = difflib.get_close_matches(unknown.group(1), hook_names(), n=1, cutoff=0.6)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return f"{guess}facebench's hooks are {', '.join(hook_names())}"
    if "can not be found in the hookspec" in text:
        hook = re.search(r"for hook '(\w+)'", text)
        example = f": def {hook.group(1)}(register)" if hook else ""
        return f"a facebench hook takes exactly one argument, named register{example}"
    return ""


def undecorated_hooks(module: ModuleType) -> list[str]:
    """Functions in ``module`` named like a hook but lacking ``@facebench.hookimpl``."""
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    return [
        name
        for name in hook_names()
        if callable(getattr(module, name, None)) and not hasattr(getattr(module, name), marker)
    ]


def register_module(pm: pluggy.PluginManager, module: ModuleType, info: PluginInfo, key: str) -> None:
    """Register ``module`` under ``key``; a misspelled hook marks the plugin broken."""
    try:
        pm.register(module, name=key)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if pm.is_registered(module):
            pm.unregister(module)
        info.mark_broken(exc, validation_hint(exc))
        return
    for name in undecorated_hooks(module):
        info.add_warning(
            f"{module.__name__}.{name} lacks @facebench.hookimpl, so facebench never calls it: "
            f"add the decorator"
        )


def missing_own_module(exc: BaseException, module_name: str) -> str | None:
    """When ``exc`` says ``module_name`` itself (not a dependency) does not exist: a close name
    among its siblings (``my_lab.plugin`` for ``my_lab.plugn``), or ``""``; otherwise None."""
    if not isinstance(exc, ModuleNotFoundError) or exc.name is None:
        return None
    if not (module_name == exc.name or module_name.startswith(exc.name + ".")):
        return None  # a dependency of the plugin is missing, not the plugin's own module
    parent = exc.name.rpartition(".")[0]
    try:
        spec = importlib.util.find_spec(parent) if parent else None
    except Exception:  # the parent cannot be imported either: no suggestion
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return ""
    known = [f"{parent}.{m.name}" for m in pkgutil.iter_modules(spec.submodule_search_locations)]
    close = difflib.get_close_matches(exc.name, known, n=1, cutoff=0.6)
    return close[0] if close else ""


def import_hint(exc: BaseException, module_name: str) -> str:
    """For an entry point naming a module that does not exist: where to fix it, and a close name."""
    close = missing_own_module(exc, module_name)
    if close is None:
        return ""
    guess = f" (did you mean {close!r}?)" if close else ""
    return (
        f"the entry point names a module that does not exist{guess}: correct it under "
        f"[project.entry-points.facebench] in the plugin's pyproject.toml and reinstall it (pip install -e .)"
    )


def load_entry_points(
    pm: pluggy.PluginManager,
    entry_points: list[importlib_metadata.EntryPoint] | None = None,
    disabled: set[str] | None = None,
) -> dict[str, PluginInfo]:
    """Import each ``facebench`` entry point and register it; return info keyed by plugin key."""
    if entry_points is None:
        entry_points = list(importlib_metadata.entry_points(group=ENTRY_POINT_GROUP))
    disabled = disabled_names() if disabled is None else disabled
    infos: dict[str, PluginInfo] = {}
    for ep in sorted(entry_points, key=lambda e: (e.dist.name if e.dist else "", e.name)):
        dist_name = ep.dist.name if ep.dist else ep.name
        info = PluginInfo(
            name=dist_name,
            version=ep.dist.version if ep.dist else "unknown",
            entry_point=f"{ep.name} = {ep.value}",
        )
        key = f"{dist_name}:{ep.name}"
        infos[key] = info
        if {normalize_name(dist_name), normalize_name(ep.name)} & disabled:
            info.status = "disabled"
            continue
        try:
            module = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin (even one calling sys.exit) never breaks facebench
            info.mark_broken(exc, import_hint(exc, ep.module))
            continue
        register_module(pm, module, info, key)
    return infos


def load_builtin(pm: pluggy.PluginManager) -> dict[str, PluginInfo]:
    """Register the core's own plugin (its distance metrics)."""
    info = PluginInfo(
        name=BUILTIN_DISTRIBUTION,
        version=core_version(),
        entry_point=f"builtin = {BUILTIN_MODULE}",
    )
    register_module(pm, importlib.import_module(BUILTIN_MODULE), info, BUILTIN_DISTRIBUTION)
    return {BUILTIN_DISTRIBUTION: info}


def core_version() -> str:
    """The installed version of facebench-core."""
    try:
        return importlib_metadata.version(BUILTIN_DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"
