"""What ``facebench describe NAME`` and ``facebench list --json`` say about a registered thing.

Options are read from the target's constructor (:func:`facebench.typed_options.declared_options`),
so describing imports the target (and, for a model, builds it without its network to read its
preprocessing). ``facebench list`` without ``--json`` never calls this module.
"""

from __future__ import annotations

import inspect
from typing import Any

from facebench.errors import ConfigError, UnknownNameError
from facebench.registry import KINDS, Entry, Kind, Registry, unknown_name_message
from facebench.typed_options import declared_options

METRIC_ARGUMENTS = 2  # a metric's first two parameters are the (N, D) inputs, not options


def find_entry(registry: Registry, name: str, kind: Kind | None = None) -> Entry:
    """The entry called ``name`` (of ``kind``, if given); a name two kinds share needs ``kind``."""
    if kind is not None:
        return registry.get(kind, name)
    kinds = [k for k in KINDS if name in registry.names(k)]
    if not kinds:
        everything = sorted({n for k in KINDS for n in registry.names(k)})
        message = unknown_name_message("name", name, everything, registry.plugins)
        raise UnknownNameError(message.replace("Known names", "Known"))
    if len(kinds) > 1:
        choices = " or ".join(f"--kind {k}" for k in kinds)
        raise ConfigError(f"{name!r} is both a {' and a '.join(kinds)}; add {choices}")
    return registry.get(kinds[0], name)


def entry_options(entry: Entry) -> list[dict[str, Any]]:
    """Every option of ``entry``'s target: name, type, default, required, help (imports the target)."""
    if entry.kind in ("dataset", "benchmark"):
        return entry.spec.options()  # type: ignore[attr-defined]
    target = entry.spec.load()
    options = list(declared_options(target).values())
    if entry.kind == "metric" and not inspect.isclass(target):
        options = options[METRIC_ARGUMENTS:]
    return [option.to_dict() for option in options]


def describe_entry(entry: Entry) -> dict[str, Any]:
    """``facebench describe --json``: description, plugin, options and kind-specific defaults."""
    target = entry.spec.load()
    info: dict[str, Any] = {
        "name": entry.spec.name,
        "kind": entry.kind,
        "description": entry.spec.description,
        "plugin": entry.plugin,
        "plugin_version": entry.plugin_version,
        "target": entry.spec.target if isinstance(entry.spec.target, str) else _qualname(target),
        "doc": _first_paragraph(inspect.getdoc(target)),
        "options": entry_options(entry),
        "available_architectures": hasattr(target, "available_architectures"),
    }
    if entry.kind == "model":
        info.update(_model_defaults(entry, target))
    elif entry.kind == "task":
        info.update(_task_defaults(target))
    elif entry.kind == "metric":
        info["bounded"] = bool(getattr(entry.spec, "bounded", False))
        info["symmetric"] = bool(getattr(entry.spec, "symmetric", True))
    elif entry.kind in ("dataset", "benchmark"):
        info.update(entry.spec.details())  # type: ignore[attr-defined]
    return info


def available_architectures(entry: Entry) -> list[str]:
    """``target.available_architectures()``, for model families that list them."""
    target = entry.spec.load()
    listing = getattr(target, "available_architectures", None)
    if not callable(listing):
        raise ConfigError(
            f"{entry.kind} {entry.spec.name!r} does not list architectures (its class has no "
            f"available_architectures()); see its options with `facebench describe {entry.spec.name}`"
        )
    return [str(name) for name in listing()]


def _model_defaults(entry: Entry, target: Any) -> dict[str, Any]:
    """Default layers, reduction and preprocessing (from an instance built without its network)."""
    layers = list(getattr(target, "default_layers", ())) or ["output"]
    defaults: dict[str, Any] = {
        "default_layers": layers,
        "default_reduction": getattr(target, "default_reduction", None),
        "preprocessing": None,
    }
    required = [o["name"] for o in entry_options(entry) if o["required"]]
    if required:
        defaults["preprocessing_note"] = f"depends on the required option(s) {', '.join(required)}"
        return defaults
    try:
        model = target(name=entry.spec.name, device="cpu")
        defaults["preprocessing"] = model.preprocessing.describe()
    except Exception as exc:  # a plugin's constructor must not break describe
        defaults["preprocessing_note"] = f"could not be read with the default options ({_one_line(exc)})"
    return defaults


def _task_defaults(target: Any) -> dict[str, Any]:
    """What the task reads (pairs file, images table), the columns it needs with its default
    options (the label column among them) and its plotted columns."""
    defaults: dict[str, Any] = {}
    for key in ("pairs_file", "images_table", "required_columns", "plot_columns"):
        value = getattr(target, key, None)
        if value is not None:
            defaults[key] = list(value) if isinstance(value, tuple) else value
    needed = _default_columns(target)
    if defaults.get("pairs_file") == "unused":
        defaults.pop("required_columns", None)
    elif needed is not None:
        defaults["required_columns"] = needed["pairs"]
    if needed is not None and defaults.get("images_table", "unused") != "unused":
        defaults["required_table_columns"] = needed["table"]
    return defaults


def _default_columns(target: Any) -> dict[str, list[str]] | None:
    """``columns()`` and ``table_columns()`` of the task with every option at its default, read
    from an instance whose options are set without running ``__init__`` (which needs files);
    None when the task needs more than its options for that."""
    if not inspect.isclass(target):
        return None
    options = declared_options(target).values()
    try:
        task = object.__new__(target)
        for option in options:
            if not option.required:
                setattr(task, option.name, option.default)
        return {"pairs": list(task.columns()), "table": list(task.table_columns())}
    except Exception:  # a task whose columns depend on what its __init__ computes
        return None


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _qualname(target: Any) -> str:
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


__all__ = ["available_architectures", "describe_entry", "entry_options", "find_entry"]
