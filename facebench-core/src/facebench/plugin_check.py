"""``check_plugin("my-lab")``: a whole installed plugin distribution passes, in one call
(re-exported by :mod:`facebench.testing`).

The distribution must be installed with a ``facebench`` entry point, load with status ``ok`` and no
warning (a function named like a hook without ``@facebench.hookimpl``, or nothing registered), and
every entry it registers must pass its kind's check: :func:`~facebench.conformance.check_model`,
:func:`~facebench.conformance.check_task` or :func:`~facebench.conformance.check_metric`; an entry
of another kind must at least import. Every failure is collected into one ``AssertionError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from facebench.conformance import check_metric, check_model, check_task
from facebench.plugins import normalize_name
from facebench.registry import Entry, Registry, get_registry


def check_plugin(
    distribution: str,
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry | None = None,
) -> list[str]:
    """Check every entry that ``distribution`` registers; return their names.

    ``options`` gives an entry's check its options by entry name, e.g.
    ``{"my-net": {"pretrained": False}}`` for a model whose default weights need a download.
    """
    registry = registry or get_registry()
    options = options or {}
    wanted = normalize_name(distribution)
    infos = [info for info in registry.plugins if normalize_name(info.name) == wanted]
    installed = ", ".join(sorted({info.name for info in registry.plugins})) or "none"
    assert infos, (
        f"no installed distribution {distribution!r} has a facebench entry point (installed plugins: "
        f"{installed}); install it (pip install -e .) and check [project.entry-points.facebench] "
        f"in its pyproject.toml"
    )
    problems: list[str] = []
    for info in infos:
        if info.status != "ok":
            problems.append(
                f"{info.entry_point}: {info.status}: {info.error or 'see FACEBENCH_DISABLE_PLUGINS'}"
            )
        elif info.warning:
            problems.append(f"{info.entry_point}: {info.warning}")
    entries = [entry for entry in registry if normalize_name(entry.plugin) == wanted]
    for entry in entries:
        try:
            _check(entry, registry, dict(options.get(entry.spec.name, {})))
        except AssertionError as exc:
            problems.append(f"{entry.kind} {entry.spec.name!r}: {exc}")
        except Exception as exc:  # a check that cannot even build the entry is a failure too
            problems.append(f"{entry.kind} {entry.spec.name!r}: {type(exc).__name__}: {exc}")
    unknown = sorted(set(options) - {entry.spec.name for entry in entries})
    if unknown:
        problems.append(f"options given for names {distribution!r} does not register: {', '.join(unknown)}")
    assert not problems, f"plugin {distribution!r}:\n- " + "\n- ".join(problems)
    return [entry.spec.name for entry in entries]


def _check(entry: Entry, registry: Registry, options: dict[str, Any]) -> None:
    checks: dict[str, Callable[..., Any]] = {"model": check_model, "task": check_task}
    if entry.kind == "metric":
        check_metric(entry.spec.name, registry=registry)
    elif entry.kind in checks:
        checks[entry.kind](entry.spec.name, registry=registry, **options)
    else:
        entry.spec.load()


__all__ = ["check_plugin"]
