"""What the plugins registered: model, task and metric specs by name, with their plugin.

Names are unique across plugins. When two plugins register the same name, ``facebench list``
still works and shows the clash, but using that name raises :class:`PluginConflictError`
naming both distributions; disable one of them with ``FACEBENCH_DISABLE_PLUGINS``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from facebench.errors import ConfigError, FacebenchError, PluginConflictError, UnknownNameError
from facebench.typed_options import convert_options

Kind = Literal["model", "task", "metric", "executor", "analysis"]
KINDS: tuple[Kind, ...] = ("model", "task", "metric", "executor", "analysis")
HOOK_FOR_KIND: dict[Kind, str] = {
    "model": "register_models",
    "task": "register_tasks",
    "metric": "register_metrics",
    "executor": "register_executors",
    "analysis": "register_analyses",
}
PLURAL: dict[Kind, str] = {kind: "analyses" if kind == "analysis" else f"{kind}s" for kind in KINDS}
"""Section names of ``facebench list`` (``analysis`` -> ``analyses``)."""


@dataclass(frozen=True)
class Spec:
    """A registered thing: its name, a lazy target and a one-line description.

    ``target`` is a ``"module:attr"`` string, imported only when the thing is used, or a
    callable (a class or factory).
    """

    name: str
    target: str | Callable[..., Any]
    description: str = ""

    def load(self) -> Callable[..., Any]:
        """Import and return the target; one that cannot be imported raises :class:`ConfigError`."""
        if callable(self.target):
            return self.target
        module_name, _, attr = self.target.partition(":")
        if not attr:
            raise ConfigError(f"{self.name!r}: target {self.target!r} is not 'module:attr'")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except FacebenchError:
            raise
        except Exception as exc:  # ImportError, AttributeError, or anything the module raises
            kind = type(self).__name__.removesuffix("Spec").lower() or "plugin"
            raise ConfigError(
                f"{kind} {self.name!r}: its target {self.target!r} cannot be imported "
                f"({one_line(exc)}); reinstall the plugin that registers it (facebench list plugins "
                f"names it), or skip that plugin with FACEBENCH_DISABLE_PLUGINS"
            ) from exc
        return obj


@dataclass(frozen=True)
class ModelSpec(Spec):
    """A model: ``target(name=..., **options)`` returns a :class:`facebench.model.BaseModel`."""


@dataclass(frozen=True)
class TaskSpec(Spec):
    """A task: ``target(name=..., pairs_file_path=..., images_path=..., **options)``
    returns a :class:`facebench.task.BaseTask`."""


@dataclass(frozen=True)
class MetricSpec(Spec):
    """A row-wise distance ``f(a[N, D], b[N, D]) -> d[N]``.

    ``bounded`` metrics are ``1 - similarity`` (cosine, correlation): verification scores
    them as ``1 - d``; others as ``-d``. ``symmetric``: ``d(a, b) == d(b, a)`` (what
    :func:`facebench.testing.check_metric` checks; False for a divergence).
    """

    bounded: bool = False
    symmetric: bool = True


@dataclass(frozen=True)
class ExecutorSpec(Spec):
    """An executor: ``target(**options)`` returns a :class:`facebench.executors.Executor`."""


@dataclass(frozen=True)
class AnalysisSpec(Spec):
    """An analysis across models: ``target(name=..., **options)`` returns a
    :class:`facebench.analysis.BaseAnalysis` (options may include ``table_path`` and
    ``images_path``, an images table to run on)."""


SPEC_FOR_KIND: dict[Kind, type[Spec]] = {
    "model": ModelSpec,
    "task": TaskSpec,
    "metric": MetricSpec,
    "executor": ExecutorSpec,
    "analysis": AnalysisSpec,
}


@dataclass(frozen=True)
class Entry:
    """A spec with the distribution that registered it."""

    kind: Kind
    spec: Spec
    plugin: str
    plugin_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "plugin": self.plugin,
            "description": self.spec.description,
        }


@dataclass
class Registry:
    """Specs by kind and name, plugin records, and name clashes."""

    plugins: list[Any] = field(default_factory=list)
    _entries: dict[Kind, dict[str, Entry]] = field(default_factory=lambda: {kind: {} for kind in KINDS})
    conflicts: dict[tuple[Kind, str], list[str]] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        """Add ``entry``; a second entry of the same kind and name is recorded as a clash."""
        existing = self._entries[entry.kind].get(entry.spec.name)
        if existing is None:
            self._entries[entry.kind][entry.spec.name] = entry
            return
        clash = self.conflicts.setdefault((entry.kind, entry.spec.name), [existing.plugin])
        clash.append(entry.plugin)

    def entries(self, kind: Kind) -> list[Entry]:
        """All entries of ``kind``, sorted by name."""
        return sorted(self._entries[kind].values(), key=lambda e: e.spec.name)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def get(self, kind: Kind, name: str) -> Entry:
        """The entry called ``name``, or an error with suggestions."""
        if (kind, name) in self.conflicts:
            plugins = " and ".join(repr(p) for p in self.conflicts[(kind, name)])
            raise PluginConflictError(
                f"{kind} {name!r} is registered by more than one plugin: {plugins}. "
                f"Uninstall one, or skip it with FACEBENCH_DISABLE_PLUGINS=<distribution>."
            )
        try:
            return self._entries[kind][name]
        except KeyError:
            raise UnknownNameError(unknown_name_message(kind, name, self.names(kind))) from None

    def __iter__(self) -> Iterator[Entry]:
        for kind in KINDS:
            yield from self.entries(kind)

    def create(self, kind: Kind, name: str, /, **options: Any) -> Any:
        """Build the ``kind`` called ``name`` with ``options`` converted to the types its
        constructor declares (:mod:`facebench.typed_options`); bad ones raise ConfigError."""
        factory = self.get(kind, name).spec.load()
        converted = convert_options(kind, name, factory, options)
        try:
            return factory(**converted)
        except FacebenchError:
            raise
        except Exception as exc:  # a plugin's constructor that raises: one line, not a traceback
            raise ConfigError(
                f"{kind} {name!r} could not be created ({one_line(exc)}); check its options, "
                f"or report this to the authors of the plugin that registers it"
            ) from exc


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """``unknown model 'vgg61'; did you mean 'vgg16'? Known: ...``"""
    message = f"unknown {kind} {name!r}."
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if close:
        message = message[:-1] + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    known_text = ", ".join(known) if known else "none (is the plugin package installed?)"
    return f"{message} Known {kind}s: {known_text}."


def check_options(kind: str, name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` if ``factory`` does not take ``options`` or a value does not
    fit its declared type (what :meth:`Registry.create` converts), without building anything."""
    convert_options(kind, name, factory, options)


def build_registry(pm: pluggy.PluginManager, plugins: dict[str, Any]) -> Registry:
    """Ask every registered plugin for its specs, one hook implementation at a time.

    A plugin whose hook raises is marked broken and what it registered in that hook is
    dropped; the others are unaffected.
    """
    registry = Registry(plugins=list(plugins.values()))
    for kind in KINDS:
        hook = getattr(pm.hook, HOOK_FOR_KIND[kind])
        for impl in hook.get_hookimpls():  # in registration order: built-in first
            info = plugins[impl.plugin_name]
            collected: list[Spec] = []

            def register(spec: Spec, _kind: Kind = kind, _into: list[Spec] = collected) -> None:
                expected = SPEC_FOR_KIND[_kind]
                if not isinstance(spec, expected):
                    raise TypeError(f"{HOOK_FOR_KIND[_kind]} takes {expected.__name__}, got {spec!r}")
                _into.append(spec)

            try:
                impl.function(register=register)
            except Exception as exc:  # a broken plugin must never break facebench
                info.mark_broken(exc)
                continue
            for spec in collected:
                registry.add(Entry(kind, spec, info.name, info.version))
    return registry


@functools.cache
def get_registry() -> Registry:
    """The registry of the installed plugins, built once per process."""
    from facebench import plugins

    pm = plugins.new_plugin_manager()
    infos = plugins.load_builtin(pm)
    infos.update(plugins.load_entry_points(pm))
    return build_registry(pm, infos)
