"""What a plugin author sees: `facebench list plugins`, its tracebacks, option help, the option
cache of `list --json`, and `check_plugin`."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import facebench
from facebench import MetricSpec, ModelSpec, plugins
from facebench.cli import main
from facebench.option_cache import OptionCache
from facebench.registry import Registry, build_registry, get_registry
from facebench.testing import check_plugin
from facebench.typed_options import declared_options


def registry_of(**modules: types.ModuleType) -> Registry:
    """The built-in plugin plus ``modules`` (keyed by distribution name), on a fresh manager."""
    pm = plugins.new_plugin_manager()
    infos = plugins.load_builtin(pm)
    for dist_name, module in modules.items():
        info = plugins.PluginInfo(name=dist_name, version="1.0", entry_point=f"lab = {module.__name__}")
        infos[f"{dist_name}:lab"] = info
        plugins.register_module(pm, module, info, f"{dist_name}:lab")
    return build_registry(pm, infos)


def module_with(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, function)
    return module


@facebench.hookimpl
def wrong_signature(registry):  # registered as register_models
    registry(ModelSpec("x", "nowhere:X"))


def test_list_plugins_shows_kinds_hooks_causes_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = registry_of(**{"my-lab": module_with("my_lab", register_models=wrong_signature)})
    monkeypatch.setattr("facebench.cli.get_registry", lambda: registry)
    table = CliRunner().invoke(main, ["list", "plugins"])
    assert table.exit_code == 0, table.output
    core = next(line for line in table.output.splitlines() if line.startswith("facebench-core"))
    assert "5 metrics, 2 executors" in core and "register_metrics, register_executors" in core
    lab = next(line for line in table.output.splitlines() if line.startswith("my-lab"))
    assert "broken" in lab and "Argument(s) {'registry'} are declared in the hookimpl" in lab
    assert "Traceback" not in table.output

    with_traceback = CliRunner().invoke(main, ["list", "plugins", "--traceback"])
    assert "Traceback of the broken plugin my-lab (lab = my_lab):" in with_traceback.output
    assert "pluggy" in with_traceback.output and "PluginValidationError" in with_traceback.output

    listing = json.loads(CliRunner().invoke(main, ["list", "plugins", "--json", "--traceback"]).output)
    mine = next(p for p in listing["plugins"] if p["name"] == "my-lab")
    assert "can not be found in the hookspec" in mine["error"] and "Traceback" in mine["traceback"]
    core_json = next(p for p in listing["plugins"] if p["name"] == "facebench-core")
    assert core_json["provides"]["metrics"] == 5 and "register_metrics" in core_json["hooks"]


def test_wrapped_option_help_is_read_to_the_end_of_its_sentence() -> None:
    class Net:
        def __init__(self, depth: int = 18, scale: float = 1.0, mode: str = "a") -> None:
            """Options.

            - ``depth``: the ResNet depth, e.g. 18 or 34, read from the
              checkpoint when one is given. Not checked.
            - ``scale``: a factor (i.e. a multiplier). More text.
            - ``mode``: one line without a full stop
            """

    helps = {name: option.help for name, option in declared_options(Net).items()}
    assert helps == {
        "depth": "the ResNet depth, e.g. 18 or 34, read from the checkpoint when one is given.",
        "scale": "a factor (i.e. a multiplier).",
        "mode": "one line without a full stop",
    }


class ProseExecutor:
    """Runs things.

    ``num_actors``: how many run at once (default: one per GPU, else
    one per CPU; never more than there are batches). ``other``: not an option line.
    """

    def __init__(self, num_actors: int | None = None) -> None:
        self.num_actors = num_actors


def test_prose_help_continues_on_lines_of_the_same_depth() -> None:
    help_text = declared_options(ProseExecutor)["num_actors"].help
    assert help_text == (
        "how many run at once (default: one per GPU, else one per CPU; never more than there are batches)."
    )


PACKAGE_SOURCE = '''
class Net:
    def __init__(self, width: int = {width}) -> None:
        """- ``width``: channels."""
        self.width = width
'''


def test_list_json_options_come_from_the_cache_until_the_source_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "src" / "fb_test_cached_lab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "net.py").write_text(PACKAGE_SOURCE.format(width=8))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))

    @facebench.hookimpl
    def register_models(register):
        register(ModelSpec("cached-net", "fb_test_cached_lab.net:Net"))

    registry = registry_of(**{"cached-lab": module_with("cached_lab", register_models=register_models)})
    entry = registry.get("model", "cached-net")
    cache_file = tmp_path / "cache" / "options.json"
    first = OptionCache(cache_file)
    assert first.options(entry)[0]["default"] == 8
    first.save()
    assert cache_file.is_file()

    monkeypatch.delitem(sys.modules, "fb_test_cached_lab.net")
    again = OptionCache(cache_file)
    assert again.options(entry)[0]["default"] == 8
    assert "fb_test_cached_lab.net" not in sys.modules  # read from the cache, not imported
    assert not again.changed

    (package / "net.py").write_text(PACKAGE_SOURCE.format(width=16))
    stat = os.stat(package / "net.py")
    os.utime(package / "net.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    edited = OptionCache(cache_file)
    assert edited.options(entry)[0]["default"] == 16  # the edit invalidates the cached options
    assert edited.changed


def test_list_json_never_caches_an_entry_that_cannot_be_imported(tmp_path: Path) -> None:
    @facebench.hookimpl
    def register_models(register):
        register(ModelSpec("ghost", "fb_test_no_such_module:Net"))

    registry = registry_of(lab=module_with("lab", register_models=register_models))
    cache = OptionCache(tmp_path / "options.json")
    with pytest.raises(facebench.errors.ConfigError, match="does not exist"):
        cache.options(registry.get("model", "ghost"))
    cache.save()
    assert not (tmp_path / "options.json").exists()


def test_check_plugin_collects_every_problem() -> None:
    def asymmetric(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).clamp(min=0).sum(dim=1)

    @facebench.hookimpl
    def register_metrics(register):
        register(MetricSpec("lab-fine", "facebench.metrics:euclidean_distance"))
        register(MetricSpec("lab-asym", asymmetric))

    def register_tasks(register):  # the decorator is missing
        pass

    module = module_with("lab", register_metrics=register_metrics, register_tasks=register_tasks)
    registry = registry_of(**{"my-lab": module})
    with pytest.raises(AssertionError) as caught:
        check_plugin("my_lab", registry=registry)  # names compare normalised
    message = str(caught.value)
    assert "lab.register_tasks lacks @facebench.hookimpl" in message
    assert "metric 'lab-asym': lab-asym: d(a, b) != d(b, a)" in message
    assert "lab-fine" not in message
    assert check_plugin("facebench-core", registry=registry) == [
        "correlation",
        "cosine",
        "euclidean",
        "manhattan",
        "squared-euclidean",
        "local",
        "ray",
    ]


def test_check_plugin_of_a_broken_or_missing_distribution_says_what_to_do() -> None:
    registry = registry_of(**{"my-lab": module_with("my_lab", register_models=wrong_signature)})
    with pytest.raises(AssertionError, match=r"broken: PluginValidationError.*named register"):
        check_plugin("my-lab", registry=registry)
    with pytest.raises(AssertionError, match=r"no installed distribution 'nope'.*entry-points\.facebench"):
        check_plugin("nope", registry=get_registry())
