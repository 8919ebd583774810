"""What the plugins registered: model, task and metric specs by name, with their plugin.

Names are unique across plugins. When two plugins register the same name, ``facebench list``
still works and shows the clash, but using that name raises :class:`PluginConflictError`
naming both distributions; disable one of them with ``FACEBENCH_DISABLE_PLUGINS``.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from facebench.errors import ConfigError, FacebenchError, PluginConflictError, UnknownNameError
from facebench.plugins import missing_own_module
from facebench.typed_options import convert_options

Kind = Literal["model", "task", "metric", "executor", "analysis", "dataset", "benchmark"]
KINDS: tuple[Kind, ...] = ("model", "task", "metric", "executor", "analysis", "dataset", "benchmark")
HOOK_FOR_KIND: dict[Kind, str] = {
    "model": "register_models",
    "task": "register_tasks",
    "metric": "register_metrics",
    "executor": "register_executors",
    "analysis": "register_analyses",
    "dataset": "register_datasets",
    "benchmark": "register_benchmarks",
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
        kind = type(self).__name__.removesuffix("Spec").lower() or "plugin"
        fix = (
            f"Correct the {type(self).__name__} in the plugin's register hook (facebench list plugins"
            " names it)."
        )
        try:
            obj: Any = importlib.import_module(module_name)
        except FacebenchError:
            raise
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # ImportError, SystemExit, or anything the module raises
            close = missing_own_module(exc, module_name)
            if close is not None:
                guess = f"; did you mean {close!r}?" if close else "."
                raise ConfigError(
                    f"{kind} {self.name!r}: its target {self.target!r} names the module {module_name!r}, "
                    f"which does not exist{guess} {fix}"
                ) from exc
            raise ConfigError(
                f"{kind} {self.name!r}: its target {self.target!r} cannot be imported "
                f"({one_line(exc)}); reinstall the plugin that registers it (facebench list plugins "
                f"names it), or skip that plugin with FACEBENCH_DISABLE_PLUGINS"
            ) from exc
        parts = attr.split(".")
        for depth, part in enumerate(parts):
            if not hasattr(obj, part):
                known = [name for name in dir(obj) if not name.startswith("_")]
                close_names = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
                where = ".".join([module_name, *parts[:depth]])
                suggestion = f"{module_name}:{'.'.join([*parts[:depth], *close_names])}"
                guess = f"; did you mean {suggestion!r}?" if close_names else "."
                raise ConfigError(
                    f"{kind} {self.name!r}: its target {self.target!r} names {part!r}, which {where} "
                    f"does not define{guess} {fix}"
                )
            obj = getattr(obj, part)
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


@dataclass(frozen=True)
class DatasetFile:
    """One file of a dataset: its name in the dataset's folder, its SHA-256, where it can be
    downloaded (``None``: it cannot) and whether it is an archive (.tgz, .tar, .zip) to unpack."""

    name: str
    sha256: str | None = None
    url: str | None = None
    unpack: bool = False


VERIFICATION_PROTOCOL: tuple[dict[str, Any], ...] = (
    {"plugin": "accuracy", "label_column": "same", "fold_column": "fold"},
)
"""10-fold verification with the dataset's own folds: accuracy, AUC, EER and TAR@FAR."""


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """A dataset: ``target(root, work_dir)`` reads a copy in the folder ``root`` and returns a
    :class:`facebench.datasets.DatasetData` (an images folder plus a pairs file and/or an images
    table, written under ``work_dir`` when converted). ``files`` are what a copy is fetched from;
    ``protocol`` the task tables its standard protocol runs; ``license`` and ``request`` say
    whether it may be redistributed and where to ask for it when it may not be fetched."""

    files: tuple[DatasetFile, ...] = ()
    protocol: tuple[dict[str, Any], ...] = VERIFICATION_PROTOCOL
    license: str = ""
    request: str = ""

    @property
    def fetchable(self) -> bool:
        """Whether every file has a URL and a checksum to verify it."""
        return bool(self.files) and all(f.url and f.sha256 for f in self.files)

    def options(self) -> list[dict[str, Any]]:
        """The options of ``--dataset NAME:key=value``."""
        return [_option("path", "this dataset's folder (default: DATA_DIR/<name>)")]

    def details(self) -> dict[str, Any]:
        """What ``facebench describe`` shows beyond the description."""
        return {
            "files": [
                {"name": f.name, "sha256": f.sha256, "url": f.url, "unpack": f.unpack} for f in self.files
            ],
            "fetchable": self.fetchable,
            "protocol": [dict(task) for task in self.protocol],
            "license": self.license,
            "request": self.request,
        }


@dataclass(frozen=True)
class BenchmarkSpec(Spec):
    """A benchmark: ``target()`` returns the path of its ``benchmark.toml`` (tasks, a dataset or
    a stimulus folder verified by checksums, human reference data); see :mod:`facebench.benchmarks`."""

    def options(self) -> list[dict[str, Any]]:
        """The options of ``--benchmark NAME:key=value``."""
        return [_option("images", "the stimulus folder, for a benchmark whose stimuli you supply")]

    def details(self) -> dict[str, Any]:
        """What ``facebench describe`` shows beyond the description: the benchmark file."""
        return {"benchmark_file": str(self.load()())}


def _option(name: str, help_text: str) -> dict[str, Any]:
    return {"name": name, "type": "path", "default": None, "required": False, "help": help_text}


SPEC_FOR_KIND: dict[Kind, type[Spec]] = {
    "model": ModelSpec,
    "task": TaskSpec,
    "metric": MetricSpec,
    "executor": ExecutorSpec,
    "analysis": AnalysisSpec,
    "dataset": DatasetSpec,
    "benchmark": BenchmarkSpec,
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
            message = unknown_name_message(kind, name, self.names(kind), self.plugins)
            raise UnknownNameError(message) from None

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


def unknown_name_message(kind: str, name: str, known: list[str], plugins: Sequence[Any] = ()) -> str:
    """``unknown model 'vgg61'; did you mean 'vgg16'? Known: ...``. With a broken plugin among
    ``plugins``, which one and why (its entries are unavailable, so the name may be one of them)
    instead of a guess; a plugin with a warning (a hook without its decorator) is named too."""
    broken = [p for p in plugins if p.status == "broken"]
    warned = [p for p in plugins if p.status == "ok" and p.warning]
    message = f"unknown {kind} {name!r}."
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    if broken:
        reasons = "; ".join(f"{p.name!r} ({p.error})" for p in broken)
        plural = "s are" if len(broken) > 1 else " is"
        message = (
            f"{message[:-1]}: the plugin{plural} broken, so nothing it registers is available: {reasons}. "
            f"Fix it (facebench list plugins --traceback shows the whole error) or uninstall it."
        )
    elif close:
        message = message[:-1] + "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    for plugin in warned:
        message += f" The plugin {plugin.name!r} may not register what it means to: {plugin.warning}."
    known_text = ", ".join(known) if known else "none (is the plugin package installed?)"
    return f"{message} Known {kind}s: {known_text}."


def check_options(kind: str, name: str, factory: Callable[..., Any], options: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` if ``factory`` does not take ``options`` or a value does not
    fit its declared type (what :meth:`Registry.create` converts), without building anything."""
    convert_options(kind, name, factory, options)


def build_registry(pm: pluggy.PluginManager, plugins: dict[str, Any]) -> Registry:
    """Ask every registered plugin for its specs, one hook implementation at a time.

    A plugin whose hook raises is marked broken and what it registered in that hook is
    dropped; the others are unaffected. Each plugin's ``hooks`` and ``provides`` are filled in,
    and an ``ok`` plugin that registers nothing gets a warning (almost always a mistake).
    """
    registry = Registry(plugins=list(plugins.values()))
    for kind in KINDS:
        hook = getattr(pm.hook, HOOK_FOR_KIND[kind])
        for impl in hook.get_hookimpls():  # in registration order: built-in first
            info = plugins[impl.plugin_name]
            info.hooks.append(HOOK_FOR_KIND[kind])
            collected: list[Spec] = []

            def register(spec: Spec, _kind: Kind = kind, _into: list[Spec] = collected) -> None:
                expected = SPEC_FOR_KIND[_kind]
                if not isinstance(spec, expected):
                    raise TypeError(f"{HOOK_FOR_KIND[_kind]} takes {expected.__name__}, got {spec!r}")
                _into.append(spec)

            try:
                impl.function(register=register)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a broken plugin (even one calling sys.exit) never breaks facebench
                info.mark_broken(exc)
                continue
            for spec in collected:
                registry.add(Entry(kind, spec, info.name, info.version))
            if collected:
                info.provides[PLURAL[kind]] = info.provides.get(PLURAL[kind], 0) + len(collected)
    for info in registry.plugins:
        if info.status == "ok" and not info.provides:
            info.add_warning(
                "it registers nothing: facebench calls only functions decorated with "
                "@facebench.hookimpl and named like a hook (facebench list plugins --json shows its hooks)"
            )
    return registry


@functools.cache
def get_registry() -> Registry:
    """The registry of the installed plugins, built once per process."""
    from facebench import plugins

    pm = plugins.new_plugin_manager()
    infos = plugins.load_builtin(pm)
    infos.update(plugins.load_entry_points(pm))
    return build_registry(pm, infos)
