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

from click.testing import CliRunner

from facebench.cli import main

EXECUTABLE = str(Path(sys.executable).with_name("facebench"))


def installed_env(package: Path, site: Path, distribution: str, module: str) -> dict[str, str]:
    """An environment where ``package`` is importable and its entry point registered."""
    dist_info = site / f"{module}-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[facebench]\n{module} = {module}.plugin\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(package / "src")])}


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
    assert "5 passed" in tests.stdout

    described = subprocess.run(
        [EXECUTABLE, "describe", "lab-faces-net", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["plugin"] == "lab-faces" and info["preprocessing"]["crop"] == 64
    assert {"width", "embedding_size"} <= {option["name"] for option in info["options"]}


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["new", "plugin", "Lab_Faces", "--output", str(tmp_path)])
    assert bad.exit_code == 2 and "lower-case letters" in bad.output
    (tmp_path / "taken").mkdir()
    taken = CliRunner().invoke(main, ["new", "plugin", "taken", "--output", str(tmp_path)])
    assert taken.exit_code == 2 and "already exists" in taken.output
