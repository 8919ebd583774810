"""What ships as source: the example plugin's sdist carries its tests with their conftest and
fixtures, and nox runs on the Python that runs it (any 3.11+) or fails, never skips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_plugin_sdist_runs_its_own_tests(tmp_path):
    source = Path(shutil.copytree(ROOT / "plugins-example", tmp_path / "source"))
    build = "from setuptools import build_meta; print(build_meta.build_sdist(r'%s'))" % (tmp_path / "dist")
    name = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    with tarfile.open(tmp_path / "dist" / name) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    [unpacked] = (tmp_path / "unpacked").iterdir()
    shipped = {p.relative_to(unpacked).as_posix() for p in (unpacked / "tests").rglob("*") if p.is_file()}
    expected = {p.relative_to(source).as_posix() for p in (source / "tests").rglob("*") if p.is_file()}
    assert shipped == {p for p in expected if "__pycache__" not in p}
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_retrieval.py"],
        cwd=unpacked,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "error" not in result.stdout.lower()


def nox(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("nox")
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "NOX_DEFAULT_VENV_BACKEND")}
    command = [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)


def test_nox_sessions_use_the_python_that_runs_nox(tmp_path):
    listing = json.loads(nox("--list-sessions", "--json", cwd=tmp_path).stdout)
    assert listing and {session["python"] for session in listing} == {
        f"{sys.version_info[0]}.{sys.version_info[1]}"
    }


def test_nox_fails_on_a_missing_python_instead_of_skipping(tmp_path):
    result = nox("-s", "lint", "--force-python", "3.99", "--envdir", str(tmp_path / "envs"), cwd=tmp_path)
    assert result.returncode != 0
    assert "failed: Python interpreter 3.99 not found" in result.stderr + result.stdout
