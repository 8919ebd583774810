"""results.json records what a result depends on: model-library versions and the DataLoader
worker count each model actually used."""

from __future__ import annotations

import importlib.metadata
from types import SimpleNamespace

import pytest

from facebench import engine
from facebench.executors.local import LocalExecutor
from facebench.results import environment_versions


def test_environment_lists_the_installed_model_libraries() -> None:
    versions = environment_versions()
    for package in ("torch", "transformers", "open_clip_torch", "timm", "rsatoolbox"):
        try:
            installed = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            assert package not in versions
        else:
            assert versions[package] == installed


@pytest.mark.parametrize(
    ("num_workers", "images", "expected"), [(3, 100, 3), (None, 10, 0), (None, 100, None)]
)
def test_the_local_executor_records_the_workers_each_model_used(
    monkeypatch: pytest.MonkeyPatch, num_workers: int | None, images: int, expected: int | None
) -> None:
    used: list[int] = []
    monkeypatch.setattr(engine, "compute", lambda job: used.append(engine.decoding_workers(job)))
    job = SimpleNamespace(
        model=SimpleNamespace(name="net"), keys=["k"] * images, batch_size=32, num_workers=num_workers
    )
    executor = LocalExecutor()
    executor.embed(job)
    expected = engine.default_num_workers(images, 32) if expected is None else expected
    assert executor.describe() == {"name": "local", "decoding_workers": {"net": expected}}
    assert used == [expected]  # what compute's DataLoader gets is what is recorded
