"""Fixtures of the example plugin's tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def dlib_descriptors() -> dict[str, list[float]]:
    """dlib 20.0.1's own descriptors of the chips in fixtures/dlib_chips (make_dlib_fixture.py)."""
    return json.loads((FIXTURES / "dlib_descriptors.json").read_text())["descriptors"]


@pytest.fixture(scope="session")
def dlib_model():  # type: ignore[no-untyped-def]
    """The real network, with the weights of the face_recognition_models package (a dependency)."""
    from facebench_example.model import DlibResNet

    model = DlibResNet(device="cpu")
    model.check_layers()
    return model
