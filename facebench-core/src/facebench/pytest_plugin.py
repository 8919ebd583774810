"""facebench's pytest plugin (entry point ``pytest11: facebench``): fixtures for plugin tests.

Installed with facebench-core, so a plugin's tests use them without a conftest:

- ``facebench_task_data``: a :class:`facebench.tiny_data.TaskData` in ``tmp_path`` — images of
  6 identities x 5, ``pairs.csv`` with every built-in task's columns, ``table.csv``;
- ``facebench_images``: a folder of those tiny images (``idNN/imgM.png``).

The checks are functions: ``from facebench.testing import check_plugin, check_model, check_task,
check_metric``.
Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from facebench.tiny_data import TaskData


@pytest.fixture
def facebench_task_data(tmp_path: Path) -> TaskData:
    """Tiny images, a pairs file and an images table for any task (see :mod:`facebench.tiny_data`)."""
    from facebench.tiny_data import write_task_data

    return write_task_data(tmp_path / "facebench-task-data")


@pytest.fixture
def facebench_images(tmp_path: Path) -> Path:
    """A folder of 30 tiny RGB images, five per identity folder."""
    from facebench.tiny_data import write_images

    folder = tmp_path / "facebench-images"
    write_images(folder)
    return folder
