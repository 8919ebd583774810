"""The plugin guide (plugins-example/README.md) as a package: its pyproject, hooks, model and task,
put together as printed, pass ``check_plugin`` and run in an experiment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd

from facebench.tiny_data import write_task_data

GUIDE = Path(__file__).resolve().parents[2] / "plugins-example" / "README.md"
EXECUTABLE = str(Path(sys.executable).with_name("facebench"))


def guide_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)


def guide_package(root: Path) -> tuple[str, dict[str, str]]:
    """Write the guide's package under ``root``; return its distribution name and an environment
    where it is installed (a dist-info with its entry point, what pip would write)."""
    (pyproject,) = [block for block in guide_blocks("toml") if "[project.entry-points.facebench]" in block]
    project = tomllib.loads(pyproject)
    assert "facebench-core>=0.2,<0.3" in project["project"]["dependencies"]
    assert "facebench" in project["project"]["keywords"]
    distribution = project["project"]["name"]
    ((entry_name, entry_value),) = project["project"]["entry-points"]["facebench"].items()
    module = entry_value.split(".")[0]
    python = guide_blocks("python")
    sources = {
        "plugin.py": [b for b in python if "@facebench.hookimpl" in b and "def register_models" in b],
        "model.py": [b for b in python if "class MyNet(BaseModel)" in b or "class MyDeepNet(BaseModel)" in b],
        "task.py": [b for b in python if "class DistanceGapTask(BaseTask)" in b],
    }
    package = root / "src" / module
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, blocks in sources.items():
        assert blocks, f"the guide has no block for {name}"
        (package / name).write_text("\n\n".join(blocks))
    dist_info = root / "site" / f"{module}-0.1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[facebench]\n{entry_name} = {entry_value}\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "site"), str(root / "src")]),
        "XDG_CACHE_HOME": str(root / "cache"),
    }
    return distribution, env


def test_the_guides_plugin_passes_check_plugin_and_runs(tmp_path: Path) -> None:
    distribution, env = guide_package(tmp_path / "guide")
    checked = subprocess.run(
        [
            sys.executable,
            "-c",
            "from facebench.testing import check_plugin; "
            f"print(sorted(check_plugin({distribution!r}, options={{'my-net': {{'all_layers': False}}}})))",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-3000:]
    assert checked.stdout.strip() == "['my-gap', 'my-net']"

    data = write_task_data(tmp_path / "stimuli")
    ran = subprocess.run(
        [
            EXECUTABLE,
            *("run", "--model", "my-net:pretrained=false", "--layers", "layer4"),
            *("--task", "my-gap:label_column=same,name=gap", "--pairs", str(data.pairs)),
            *("--images", str(data.images), "--metric", "euclidean"),
            *("--output", str(tmp_path / "results"), "--no-cache", "--quiet"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    performance = pd.read_csv(tmp_path / "results" / "performance" / "gap.csv")
    pairs = pd.read_csv(tmp_path / "results" / "distances" / "my-net" / "layer4" / "gap.csv")
    by_label = pairs.groupby("same")["model_computed_distance"].mean()
    assert abs(performance["Distance Gap"].iloc[0] - (by_label.loc[0] - by_label.loc[1])) < 1e-6


PUBLISHING = GUIDE.parents[1] / "docs" / "publishing.md"


def test_the_known_plugins_are_this_repositorys_packages_and_register_what_they_say() -> None:
    """Only real plugins are listed, each with names it really registers."""
    from facebench.registry import get_registry

    text = PUBLISHING.read_text(encoding="utf-8").split("## Known plugins", 1)[1]
    rows = re.findall(r"^\| `([\w-]+)` \| (.*) \|$", text, flags=re.M)
    repository = GUIDE.parents[1]
    packages = {
        tomllib.loads(path.read_text())["project"]["name"]
        for path in repository.glob("*/pyproject.toml")
        if path.parent.name != "facebench-core"
    }
    assert {distribution for distribution, _ in rows} == packages
    registry = get_registry()
    for distribution, registers in rows:
        for name in re.findall(r"`([\w-]+)`", registers):
            assert any(e.spec.name == name and e.plugin == distribution for e in registry), (
                distribution,
                name,
            )
    for path in repository.glob("*/pyproject.toml"):
        project = tomllib.loads(path.read_text())["project"]
        if project["name"] != "facebench-core":  # a plugin: found by a search for facebench
            assert "facebench" in project.get("keywords", []), f"{path}: add the keyword 'facebench'"
        pins = [d for d in project.get("dependencies", []) if d.startswith("facebench-core")]
        assert pins in ([], ["facebench-core>=0.2,<0.3"]), f"{path}: pin facebench-core>=0.2,<0.3"
