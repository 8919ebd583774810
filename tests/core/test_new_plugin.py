"""``facebench new plugin``: the generated package registers, describes and passes its own tests.

It is not pip-installed into the shared environment: a ``dist-info`` folder with its entry
point (what pip would write) and ``PYTHONPATH`` make it visible to a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from facebench.cli import main
from facebench.tiny_data import write_task_data

EXECUTABLE = str(Path(sys.executable).with_name("facebench"))


def installed_env(
    package: Path, site: Path, distribution: str, module: str, entry_point: str | None = None
) -> dict[str, str]:
    """An environment where ``package`` is importable and its entry point registered."""
    dist_info = site / f"{module}-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[facebench]\n{module} = {entry_point or module + '.plugin'}\n"
    )
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(package / "src")]),
        "XDG_CACHE_HOME": str(site / "cache"),
    }


def facebench(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXECUTABLE, *arguments], env=env, capture_output=True, text=True, timeout=120)


def test_a_generated_plugin_passes_its_tests_and_describes_itself(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "plugin", "lab-faces", "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "lab-faces"
    assert {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()} == {
        "pyproject.toml",
        "README.md",
        "src/lab_faces/__init__.py",
        "src/lab_faces/plugin.py",
        "src/lab_faces/model.py",
        "src/lab_faces/task.py",
        "src/lab_faces/metric.py",
        "tests/test_plugin.py",
    }
    assert 'lab_faces = "lab_faces.plugin"' in (package / "pyproject.toml").read_text()
    env = installed_env(package, tmp_path / "site", "lab-faces", "lab_faces")

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", str(package), "-q", "-p", "no:cacheprovider"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "4 passed" in tests.stdout

    described = facebench(env, "describe", "lab-faces-net", "--json")
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["plugin"] == "lab-faces" and info["preprocessing"]["crop"] == 64
    assert {"width", "embedding_size"} <= {option["name"] for option in info["options"]}

    data = write_task_data(tmp_path / "stimuli")
    ran = facebench(
        env,
        *("run", "--model", "lab-faces-net:width=4", "--layers", "features,embedding"),
        *("--task", "lab-faces-gap:label_column=same", "--pairs", str(data.pairs)),
        *("--images", str(data.images), "--metric", "lab-faces-linf"),
        *("--output", str(tmp_path / "results"), "--no-cache", "--quiet"),
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    performance = pd.read_csv(tmp_path / "results" / "performance" / "pairs.csv").set_index("Layer Name")
    assert performance["Distance Metric"].eq("lab-faces-linf").all()
    for layer in ("features", "embedding"):  # the gap is that of the exported per-pair distances
        pairs = pd.read_csv(tmp_path / "results" / "distances" / "lab-faces-net" / layer / "pairs.csv")
        by_label = pairs.groupby("same")["model_computed_distance"].mean()
        expected = by_label.loc[0] - by_label.loc[1]
        assert abs(performance.loc[layer, "Distance Gap"] - expected) < 1e-6

    pyproject = (package / "pyproject.toml").read_text()
    assert '"facebench-core>=0.2,<0.3"' in pyproject  # the one pin the docs recommend
    assert 'keywords = ["facebench"' in pyproject and "[project.urls]" in pyproject
    assert 'license = "MIT"' in pyproject and "classifiers = [" in pyproject


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["new", "plugin", "Lab_Faces", "--output", str(tmp_path)])
    assert bad.exit_code == 2 and "lower-case letters" in bad.output
    (tmp_path / "taken").mkdir()
    taken = CliRunner().invoke(main, ["new", "plugin", "taken", "--output", str(tmp_path)])
    assert taken.exit_code == 2 and "already exists" in taken.output
    for own in ("facebench-core", "facebench-models", "facebench", "facebench-example-plugin"):
        refused = CliRunner().invoke(main, ["new", "plugin", own, "--output", str(tmp_path)])
        assert refused.exit_code == 2 and "a distribution of facebench itself" in refused.output
        assert not (tmp_path / own).exists()


BREAKAGES = {
    "entry-point typo": ("lab_faces.plugn", None, None),
    "wrong hook signature": (None, "def register_models(register:", "def register_models(registry:"),
    "missing decorator": (None, "@facebench.hookimpl\ndef register_models", "def register_models"),
    "target typo": (None, "lab_faces.model:LabFacesNet", "lab_faces.model:LabFacesNett"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_generated_plugin_gets_a_message_naming_the_fix(tmp_path: Path, breakage: str) -> None:
    """The four mistakes plugin authors make most; each message says what to change."""
    assert CliRunner().invoke(main, ["new", "plugin", "lab-faces", "--output", str(tmp_path)]).exit_code == 0
    package = tmp_path / "lab-faces"
    entry_point, old, new = BREAKAGES[breakage]
    plugin_file = package / "src" / "lab_faces" / "plugin.py"
    if old is not None:
        text = plugin_file.read_text()
        assert old in text
        plugin_file.write_text(text.replace(old, new, 1))
    env = installed_env(package, tmp_path / "site", "lab-faces", "lab_faces", entry_point)
    listed = facebench(env, "list", "plugins")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("lab-faces"))
    described = facebench(env, "describe", "lab-faces-net")
    if breakage == "entry-point typo":
        assert "broken" in row and "did you mean 'lab_faces.plugin'?" in row
        assert "[project.entry-points.facebench] in the plugin's pyproject.toml" in row
        assert described.returncode == 2 and "'lab-faces' (ModuleNotFoundError" in described.stderr
    elif breakage == "wrong hook signature":
        assert "broken" in row and "Argument(s) {'registry'} are declared in the hookimpl" in row
        assert "a facebench hook takes exactly one argument, named register" in row
        assert described.returncode == 2 and "the plugin is broken" in described.stderr
    elif breakage == "missing decorator":
        assert "ok" in row and "lab_faces.plugin.register_models lacks @facebench.hookimpl" in row
        assert "add the decorator" in row
        assert described.returncode == 2 and "unknown name 'lab-faces-net'" in described.stderr
        assert "The plugin 'lab-faces' may not register what it means to" in described.stderr
    else:
        assert " ok " in row and "warning" not in row
        assert described.returncode == 2
        assert "did you mean 'lab_faces.model:LabFacesNet'?" in described.stderr
