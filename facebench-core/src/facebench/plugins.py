"""Finding and loading plugins: entry points of group ``facebench``, never crashing on a bad one.

Each entry point names a module of ``@facebench.hookimpl`` functions. A plugin that fails to
import is recorded as ``broken`` with the first line of its error; one named in
``FACEBENCH_DISABLE_PLUGINS`` (comma-separated distribution or entry-point names) is recorded
as ``disabled`` and never imported. The core's own metrics are registered as the built-in
plugin ``facebench-core``.

pluggy's ``PluginManager.load_setuptools_entrypoints`` stops at the first plugin that fails to
import, so the loop over entry points is written here to record and skip such plugins instead.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
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


@dataclass
class PluginInfo:
    """One loaded (or skipped) plugin, as ``facebench list plugins`` shows it."""

    name: str
    version: str
    entry_point: str
    status: PluginStatus = "ok"
    error: str | None = None

    def mark_broken(self, exc: BaseException) -> None:
        """Record ``exc`` as the reason this plugin is unusable."""
        self.status = "broken"
        self.error = first_line(exc)

    def to_dict(self) -> dict[str, str | None]:
        data: dict[str, str | None] = {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "entry_point": self.entry_point,
        }
        if self.error is not None:
            data["error"] = self.error
        return data


def first_line(exc: BaseException) -> str:
    """``TypeName: first line of the message`` for a one-line report."""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message else type(exc).__name__


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


def register_module(pm: pluggy.PluginManager, module: ModuleType, info: PluginInfo, key: str) -> None:
    """Register ``module`` under ``key``; a misspelled hook marks the plugin broken."""
    try:
        pm.register(module, name=key)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        if pm.is_registered(module):
            pm.unregister(module)
        info.mark_broken(exc)


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
        except Exception as exc:  # a broken plugin must never break facebench
            info.mark_broken(exc)
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
