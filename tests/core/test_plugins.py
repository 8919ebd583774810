"""Plugin discovery and registration on fresh plugin managers."""

from __future__ import annotations

import sys
import types

import importlib_metadata
import pytest

import facebench
from facebench import MetricSpec, ModelSpec, TaskSpec, plugins
from facebench.errors import ConfigError, PluginConflictError, UnknownNameError
from facebench.registry import Registry, build_registry


def make_module(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, function)
    return module


def registry_from(*modules: tuple[str, types.ModuleType]) -> Registry:
    """Register modules in-process, as entry points would be, on a fresh plugin manager."""
    pm = plugins.new_plugin_manager()
    infos = plugins.load_builtin(pm)
    for dist_name, module in modules:
        info = plugins.PluginInfo(name=dist_name, version="1.0", entry_point=f"x = {module.__name__}")
        key = f"{dist_name}:x"
        infos[key] = info
        plugins.register_module(pm, module, info, key)
    return build_registry(pm, infos)


class Net:
    def __init__(self, depth: int = 3) -> None:
        self.depth = depth


@facebench.hookimpl
def register_one_model(register):  # misspelled hook name on purpose
    register(ModelSpec("x", Net))


def test_in_process_registration() -> None:
    @facebench.hookimpl
    def register_models(register):
        register(ModelSpec("net", Net, "a test network"))

    registry = registry_from(("lab-net", make_module("lab_net", register_models=register_models)))
    entry = registry.get("model", "net")
    assert (entry.plugin, entry.plugin_version, entry.spec.description) == (
        "lab-net",
        "1.0",
        "a test network",
    )
    assert registry.create("model", "net", depth=5).depth == 5
    assert "cosine" in registry.names("metric")


def test_unknown_option_lists_accepted_ones() -> None:
    @facebench.hookimpl
    def register_models(register):
        register(ModelSpec("net", Net))

    registry = registry_from(("lab-net", make_module("lab_net", register_models=register_models)))
    with pytest.raises(ConfigError, match="Accepted options: depth"):
        registry.create("model", "net", width=3)


def test_misspelled_hook_marks_plugin_broken() -> None:
    registry = registry_from(("typo", make_module("typo", register_one_model=register_one_model)))
    info = next(p for p in registry.plugins if p.name == "typo")
    assert info.status == "broken"
    assert "register_one_model" in info.error
    assert "did you mean 'register_models'?" in info.error
    assert "x" not in registry.names("model")


def test_hook_that_raises_marks_only_that_plugin_broken() -> None:
    @facebench.hookimpl
    def register_tasks(register):
        register(TaskSpec("fine", "somewhere:Task"))

    @facebench.hookimpl
    def register_tasks_broken(register):
        raise RuntimeError("config file missing\nsecond line")

    registry = registry_from(
        ("good", make_module("good", register_tasks=register_tasks)),
        ("bad", make_module("bad", register_tasks=register_tasks_broken)),
    )
    bad = next(p for p in registry.plugins if p.name == "bad")
    assert (bad.status, bad.error) == ("broken", "RuntimeError: config file missing; second line")
    assert "config file missing" in bad.traceback and "Traceback" in bad.traceback
    assert registry.names("task") == ["fine"]


def test_wrong_spec_kind_is_a_broken_plugin() -> None:
    @facebench.hookimpl
    def register_metrics(register):
        register(ModelSpec("not-a-metric", Net))

    registry = registry_from(("mixed", make_module("mixed", register_metrics=register_metrics)))
    info = next(p for p in registry.plugins if p.name == "mixed")
    assert info.status == "broken" and "MetricSpec" in info.error


def test_duplicate_names_error_names_both_distributions() -> None:
    def provider(description: str):
        @facebench.hookimpl
        def register_metrics(register):
            register(MetricSpec("cosine", "facebench.metrics:cosine_distance", description))

        return register_metrics

    registry = registry_from(("lab-a", make_module("lab_a", register_metrics=provider("a"))))
    assert ("metric", "cosine") in registry.conflicts
    with pytest.raises(PluginConflictError, match=r"'facebench-core' and 'lab-a'.*FACEBENCH_DISABLE_PLUGINS"):
        registry.get("metric", "cosine")
    assert registry.get("metric", "euclidean").plugin == "facebench-core"


def test_unknown_name_suggests() -> None:
    registry = registry_from()
    with pytest.raises(UnknownNameError, match="did you mean 'manhattan'"):
        registry.get("metric", "manhatan")


def entry_point(name: str, value: str) -> importlib_metadata.EntryPoint:
    return importlib_metadata.EntryPoint(name=name, value=value, group=plugins.ENTRY_POINT_GROUP)


def test_entry_point_that_fails_to_import_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    good = make_module("fb_test_good_plugin")

    @facebench.hookimpl
    def register_metrics(register):
        register(MetricSpec("l-inf", lambda a, b: (a - b).abs().amax(dim=1)))

    good.register_metrics = register_metrics
    monkeypatch.setitem(sys.modules, "fb_test_good_plugin", good)
    pm = plugins.new_plugin_manager()
    infos = plugins.load_entry_points(
        pm,
        [entry_point("missing", "fb_test_no_such_module"), entry_point("good", "fb_test_good_plugin")],
        disabled=set(),
    )
    statuses = {info.name: (info.status, info.error) for info in infos.values()}
    assert statuses["missing"][0] == "broken"
    assert statuses["missing"][1].startswith("ModuleNotFoundError: No module named 'fb_test_no_such_module'")
    assert statuses["good"] == ("ok", None)
    assert build_registry(pm, infos).names("metric") == ["l-inf"]


def test_disabled_plugins_are_never_imported() -> None:
    pm = plugins.new_plugin_manager()
    infos = plugins.load_entry_points(
        pm,
        [entry_point("Lab_Plugin", "fb_test_would_fail_to_import")],
        disabled=plugins.disabled_names({"FACEBENCH_DISABLE_PLUGINS": " other, lab-plugin "}),
    )
    (info,) = infos.values()
    assert (info.status, info.error) == ("disabled", None)


def test_create_passes_a_name_option_through() -> None:
    class Named:
        def __init__(self, name: str = "default") -> None:
            self.name = name

    @facebench.hookimpl
    def register_models(register):
        register(ModelSpec("named", Named))

    registry = registry_from(("lab-net", make_module("lab_net", register_models=register_models)))
    assert registry.create("model", "named", name="my-run").name == "my-run"


def test_options_forwarded_with_kwargs_are_checked_against_the_base_class() -> None:
    class Base:
        def __init__(self, name: str | None = None, seed: int = 0) -> None:
            self.name, self.seed = name, seed

    class Child(Base):
        def __init__(self, name: str | None = None, depth: int = 3, **options: object) -> None:
            super().__init__(name=name, **options)
            self.depth = depth

    @facebench.hookimpl
    def register_models(register):
        register(ModelSpec("child", Child))

    registry = registry_from(("lab-net", make_module("lab_net", register_models=register_models)))
    assert registry.create("model", "child", seed=4, depth=5).seed == 4
    with pytest.raises(
        ConfigError,
        match=r"does not take the option 'sede'; did you mean 'seed'\? Accepted options: name, depth, seed ",
    ):
        registry.create("model", "child", sede=4)


def test_wrong_hook_signature_shows_pluggys_cause_and_the_fix() -> None:
    @facebench.hookimpl
    def register_models(registry):
        registry(ModelSpec("x", Net))

    registry = registry_from(("my-lab", make_module("my_lab", register_models=register_models)))
    info = next(p for p in registry.plugins if p.name == "my-lab")
    assert info.status == "broken"
    assert "Argument(s) {'registry'} are declared in the hookimpl but can not be found" in info.error
    assert "takes exactly one argument, named register" in info.error
    assert info.to_dict()["error"] == info.error and "traceback" not in info.to_dict()
    assert "PluginValidationError" in info.to_dict(with_traceback=True)["traceback"]


def test_a_hook_without_the_decorator_and_a_plugin_registering_nothing_warn() -> None:
    def register_models(register):  # no @facebench.hookimpl
        register(ModelSpec("x", Net))

    registry = registry_from(("my-lab", make_module("my_lab", register_models=register_models)))
    info = next(p for p in registry.plugins if p.name == "my-lab")
    assert (info.status, info.hooks, info.provides) == ("ok", [], {})
    assert "my_lab.register_models lacks @facebench.hookimpl" in info.warning
    assert "it registers nothing" in info.warning
    core = next(p for p in registry.plugins if p.name == "facebench-core")
    assert core.warning is None and core.provides["metrics"] == 5 and "register_metrics" in core.hooks


def test_sys_exit_at_import_marks_the_plugin_broken(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "fb_test_exits.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = plugins.new_plugin_manager()
    infos = plugins.load_entry_points(pm, [entry_point("exits", "fb_test_exits")], disabled=set())
    (info,) = infos.values()
    assert info.status == "broken"
    assert info.error == "SystemExit: the plugin called sys.exit(3) while being imported"


def test_a_keyboard_interrupt_while_loading_is_not_swallowed(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    (tmp_path / "fb_test_interrupts.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        plugins.load_entry_points(
            plugins.new_plugin_manager(), [entry_point("stop", "fb_test_interrupts")], disabled=set()
        )


def test_entry_point_typo_suggests_the_module(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    package = tmp_path / "fb_test_lab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    infos = plugins.load_entry_points(
        plugins.new_plugin_manager(), [entry_point("lab", "fb_test_lab.plugn")], disabled=set()
    )
    (info,) = infos.values()
    assert "did you mean 'fb_test_lab.plugin'?" in info.error
    assert "[project.entry-points.facebench]" in info.error


def test_an_unknown_name_with_a_broken_plugin_names_it_instead_of_guessing() -> None:
    @facebench.hookimpl
    def register_models(register):
        raise RuntimeError("weights folder not configured")

    registry = registry_from(("facelab", make_module("facelab", register_models=register_models)))
    with pytest.raises(UnknownNameError) as caught:
        registry.get("model", "facelab-convnet")
    message = str(caught.value)
    assert "'facelab' (RuntimeError: weights folder not configured)" in message
    assert "broken, so nothing it registers is available" in message
    assert "did you mean" not in message
    assert "facebench list plugins --traceback" in message


def test_a_typo_in_a_target_class_gets_did_you_mean() -> None:
    spec = ModelSpec("net", "facebench.tiny_model:TinyConvNett")
    with pytest.raises(ConfigError, match=r"did you mean 'facebench.tiny_model:TinyConvNet'\?"):
        spec.load()
    module_typo = ModelSpec("net", "facebench.tiny_modl:TinyConvNet")
    with pytest.raises(
        ConfigError,
        match=r"names the module 'facebench.tiny_modl', which does not exist; "
        r"did you mean 'facebench.tiny_model'\?",
    ):
        module_typo.load()


def test_a_target_module_calling_sys_exit_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    (tmp_path / "fb_test_target_exits.py").write_text("import sys\nsys.exit('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"cannot be imported \(SystemExit: no GPU here\)"):
        ModelSpec("net", "fb_test_target_exits:Net").load()
