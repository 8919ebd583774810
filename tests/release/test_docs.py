"""The documentation site builds strictly: a broken link, anchor or API reference fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_strictly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    api = (tmp_path / "site" / "reference" / "manager" / "index.html").read_text()
    assert "run_all_tasks_all_models" in api  # the API reference comes from the docstrings
