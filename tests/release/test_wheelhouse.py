"""The packages as users get them: wheels built from the checkout, installed BY NAME.

A fresh virtual environment installs ``facebench-models`` by name from a wheelhouse of the four
packages (``pip install --no-index --find-links dist facebench-models``), as a user would from
PyPI. Its third-party dependencies (torch, transformers, ...) are lent from this test's own
environment through a ``.pth`` file, with every facebench distribution left out, so the test
needs no network and no second copy of torch, while facebench itself comes only from the wheels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "facebench-core": "facebench",
    "facebench-models": "facebench_models",
    "facebench-tasks": "facebench_tasks",
    "plugins-example": "facebench_example",
}
FACEBENCH_PREFIXES = ("facebench", "__editable__", "_facebench")
NOT_LENT = ("pip", "_distutils")  # the fresh environment has its own pip
WHEEL_NAMES = {
    "facebench-core": "facebench_core",
    "facebench-models": "facebench_models",
    "facebench-tasks": "facebench_tasks",
    "plugins-example": "facebench_example_plugin",
}


def build_wheel(folder: str, wheelhouse: Path, scratch: Path) -> Path:
    """Build ``folder``'s wheel from a copy of it (the checkout stays clean), offline: the build
    backend (setuptools>=77, as the pyproject files require) comes from this environment."""
    source = scratch / folder
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(ROOT / folder, source, ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(wheelhouse),
            str(source),
        ],
        check=True,
    )
    [wheel] = wheelhouse.glob(f"{WHEEL_NAMES[folder]}-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    scratch = tmp_path_factory.mktemp("sources")
    wheelhouse = tmp_path_factory.mktemp("dist")
    return {folder: build_wheel(folder, wheelhouse, scratch) for folder in PACKAGES}


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment whose only facebench code is what gets installed into it."""
    base = tmp_path_factory.mktemp("fresh")
    env = base / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    lent = base / "lent-site-packages"
    lent.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if not entry.name.lower().startswith(FACEBENCH_PREFIXES) and not entry.name.startswith(NOT_LENT):
            (lent / entry.name).symlink_to(entry)
    python = env / "bin" / "python"
    # the venv's own (older) setuptools would shadow the lent one that torch requires
    subprocess.run([str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"], check=True)
    env_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(env_site) / "_lent_dependencies.pth").write_text(str(lent) + "\n")
    return env


def pip_install(env: Path, wheelhouse: Path, name: str) -> None:
    subprocess.run(
        [
            str(env / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            name,
        ],
        check=True,
    )


def listing(env: Path) -> dict[str, list[str]]:
    result = subprocess.run(
        [str(env / "bin" / "facebench"), "list", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    data = json.loads(result.stdout)
    return {section: [entry["name"] for entry in data[section]] for section in ("models", "tasks")}


def test_models_install_by_name_from_the_wheelhouse_then_tasks(
    wheelhouse: dict[str, Path], fresh_env: Path
) -> None:
    dist = wheelhouse["facebench-core"].parent
    pip_install(fresh_env, dist, "facebench-models")
    installed = listing(fresh_env)
    assert {"vgg16", "dinov2", "clip"} <= set(installed["models"])
    assert installed["tasks"] == []  # facebench-tasks is not a dependency of the models

    pip_install(fresh_env, dist, "facebench-tasks")
    assert {"accuracy", "correlation", "relative-difference"} <= set(listing(fresh_env)["tasks"])

    located = subprocess.run(
        [str(fresh_env / "bin" / "python"), "-c", "import facebench; print(facebench.__file__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert str(fresh_env) in located  # the wheel's copy, not the checkout's


@pytest.mark.parametrize("folder", sorted(PACKAGES))
def test_every_data_file_of_the_package_is_in_its_wheel(wheelhouse: dict[str, Path], folder: str) -> None:
    package = ROOT / folder / "src" / PACKAGES[folder]
    expected = {
        path.relative_to(package.parent).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert f"{PACKAGES[folder]}/py.typed" in expected
    with zipfile.ZipFile(wheelhouse[folder]) as wheel:
        names = set(wheel.namelist())
    assert expected <= names, sorted(expected - names)
    license_files = [name for name in names if name.endswith("LICENSE")]
    assert license_files, "the wheel carries no LICENSE"
