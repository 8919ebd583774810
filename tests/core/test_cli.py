"""``facebench list`` in-process and as a real subprocess over real entry points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from facebench.cli import main

EXECUTABLE = str(Path(sys.executable).with_name("facebench"))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXECUTABLE, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def fake_distribution(site: Path, name: str, module_source: str) -> None:
    """An installed distribution, as pip leaves it: dist-info with a ``facebench`` entry point."""
    module = name.replace("-", "_") + "_plugin"
    dist_info = site / f"{name.replace('-', '_')}-0.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (dist_info / "entry_points.txt").write_text(f"[facebench]\nplugin = {module}\n")
    (site / f"{module}.py").write_text(module_source)


def test_list_json_shape() -> None:
    result = CliRunner().invoke(main, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listing = json.loads(result.output)
    assert set(listing) == {
        "models",
        "tasks",
        "metrics",
        "executors",
        "analyses",
        "datasets",
        "benchmarks",
        "plugins",
    }
    assert {(e["name"], e["plugin"]) for e in listing["executors"]} >= {
        ("local", "facebench-core"),
        ("ray", "facebench-core"),
    }
    for kind in ("models", "tasks", "metrics", "executors"):
        for entry in listing[kind]:
            assert {"name", "plugin", "description"} <= set(entry)
    core = next(p for p in listing["plugins"] if p["name"] == "facebench-core")
    assert core["status"] == "ok" and core["version"]
    assert {m["name"] for m in listing["metrics"]} >= {
        "cosine",
        "euclidean",
        "squared-euclidean",
        "correlation",
        "manhattan",
    }


def test_list_one_section_as_table() -> None:
    result = CliRunner().invoke(main, ["list", "metrics"])
    assert result.exit_code == 0
    assert "Metrics:" in result.output and "squared-euclidean" in result.output
    assert "Models:" not in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("facebench, version ")


def test_installed_packages_are_found_through_their_entry_points() -> None:
    result = run_cli("list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    plugins = {p["name"]: p for p in listing["plugins"]}
    assert plugins["facebench-example-plugin"]["status"] == "ok"
    assert plugins["facebench-example-plugin"]["entry_point"] == "example = facebench_example.plugin"
    by_name = {m["name"]: m["plugin"] for m in listing["metrics"]}
    assert by_name["angular"] == "facebench-example-plugin"
    assert {m["name"]: m["plugin"] for m in listing["models"]}["vgg16"] == "facebench-models"
    assert {t["name"]: t["plugin"] for t in listing["tasks"]}["accuracy"] == "facebench-tasks"


def test_list_imports_no_heavy_library() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from facebench.cli import main; "
        "r = CliRunner().invoke(main, ['list']); assert r.exit_code == 0, r.output; "
        "print(','.join(m for m in ('torch', 'torchvision', 'transformers', 'open_clip', 'pandas') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_broken_plugin_is_listed_and_does_not_break_the_cli(tmp_path: Path) -> None:
    fake_distribution(tmp_path, "broken-lab", "raise ImportError('needs torch>=99')\n")
    result = run_cli("list", "--json", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    broken = next(p for p in listing["plugins"] if p["name"] == "broken-lab")
    assert broken["status"] == "broken"
    assert broken["error"] == "ImportError: needs torch>=99"
    assert any(m["name"] == "vgg16" for m in listing["models"])

    table = run_cli("list", "plugins", env={"PYTHONPATH": str(tmp_path)})
    assert table.returncode == 0
    assert "broken-lab" in table.stdout and "ImportError: needs torch>=99" in table.stdout


def test_disable_env_var_skips_a_distribution(tmp_path: Path) -> None:
    fake_distribution(tmp_path, "broken-lab", "raise ImportError('needs torch>=99')\n")
    result = run_cli(
        "list", "--json", env={"PYTHONPATH": str(tmp_path), "FACEBENCH_DISABLE_PLUGINS": "broken_lab"}
    )
    listing = json.loads(result.stdout)
    broken = next(p for p in listing["plugins"] if p["name"] == "broken-lab")
    assert broken["status"] == "disabled" and "error" not in broken


SHADOWING_PLUGIN = """
import facebench

@facebench.hookimpl
def register_metrics(register):
    register(facebench.MetricSpec("cosine", "facebench.metrics:euclidean_distance", "not cosine"))
"""


@pytest.mark.parametrize("disable", [False, True])
def test_duplicate_name_from_another_distribution(tmp_path: Path, disable: bool) -> None:
    fake_distribution(tmp_path, "shadow-lab", SHADOWING_PLUGIN)
    env = {"PYTHONPATH": str(tmp_path)}
    if disable:
        env["FACEBENCH_DISABLE_PLUGINS"] = "shadow-lab"
    listing = json.loads(run_cli("list", "--json", env=env).stdout)
    cosine = next(m for m in listing["metrics"] if m["name"] == "cosine")
    if disable:
        assert "conflict" not in cosine
    else:
        assert cosine["conflict"] == ["facebench-core", "shadow-lab"]
        table = run_cli("list", "metrics", env=env).stdout
        assert "CONFLICT: facebench-core, shadow-lab" in table
