"""Fixtures for task tests: the copied reference files, placeholder images, pairs files."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from facebench.pairs import RepeatedPairsWarning, read_pairs_file

ImagesFor = Callable[[Path], Path]
WritePairs = Callable[..., tuple[Path, Path]]


@pytest.fixture
def fixtures() -> Path:
    """Rows copied from the seed lab's pairs files (tests never read ../shared)."""
    return Path(__file__).resolve().parents[1] / "fixtures" / "tasks"


@pytest.fixture
def images_for(tmp_path: Path) -> ImagesFor:
    """Empty placeholder images for every image a pairs file names (tasks only check they exist)."""

    def make(pairs_file: Path) -> Path:
        folder = tmp_path / f"images_{pairs_file.stem}"
        with warnings.catch_warnings():  # the task reading the file warns, if it should
            warnings.simplefilter("ignore", RepeatedPairsWarning)
            frame = read_pairs_file(pairs_file)
        for name in pd.unique(frame[["img1", "img2"]].to_numpy().ravel()):
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        return folder

    return make


@pytest.fixture
def write_pairs(tmp_path: Path, images_for: ImagesFor) -> WritePairs:
    """Write a DataFrame as a pairs CSV with placeholder images: ``(pairs file, images folder)``."""

    def write(frame: pd.DataFrame, name: str = "pairs.csv") -> tuple[Path, Path]:
        pairs_file = tmp_path / name
        frame.to_csv(pairs_file, index=False)
        return pairs_file, images_for(pairs_file)

    return write
