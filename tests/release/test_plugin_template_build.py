"""A package made by ``facebench new plugin`` builds (sdist and wheel, offline) with the metadata
that publishing needs: the name, the one pin, keywords, licence, URLs and the entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from click.testing import CliRunner

from facebench.cli import main

BUILD = "from setuptools import build_meta; build_meta.build_sdist('dist'); build_meta.build_wheel('dist')"


def test_the_template_builds_with_publishing_metadata(tmp_path: Path) -> None:
    made = CliRunner().invoke(main, ["new", "plugin", "facebench-vislab", "--output", str(tmp_path)])
    assert made.exit_code == 0, made.output
    package = tmp_path / "facebench-vislab"
    built = subprocess.run(
        [sys.executable, "-c", BUILD], cwd=package, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert (package / "dist" / "facebench_vislab-0.1.0.tar.gz").is_file()
    wheel = package / "dist" / "facebench_vislab-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        metadata = Parser().parsestr(archive.read("facebench_vislab-0.1.0.dist-info/METADATA").decode())
        entry_points = archive.read("facebench_vislab-0.1.0.dist-info/entry_points.txt").decode()
    assert metadata["Name"] == "facebench-vislab"
    assert "facebench-core<0.3,>=0.2" in metadata.get_all("Requires-Dist")
    assert metadata["Keywords"].split(",")[:2] == ["facebench", "facebench-plugin"]
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert any(url.startswith("Repository, https://github.com/") for url in metadata.get_all("Project-URL"))
    assert "[facebench]\nfacebench_vislab = facebench_vislab.plugin" in entry_points
