"""A tiny model, a failing task, a small demo stimulus set and a registry that knows them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from facebench.demo import DemoStimuli, demo_experiment_toml, write_stimuli
from facebench.registry import Entry, ModelSpec, Registry, TaskSpec, get_registry
from facebench.task import BaseTask
from facebench.testing import TinyConvNet


class TinyFaceNet(TinyConvNet):
    """facebench.testing's tiny network; counts constructions, builds and images seen."""

    constructed: ClassVar[int] = 0
    built: ClassVar[int] = 0

    def __init__(
        self,
        name: str | None = None,
        weights_path: str | None = None,
        extract_layers: list[str] | None = None,
        preprocess_function=None,
        reduction: str | None = None,
        device: str = "cpu",
        seed: int = 0,
        **options: Any,
    ) -> None:
        super().__init__(
            name=name,
            weights_path=weights_path,
            extract_layers=extract_layers,
            preprocess_function=preprocess_function,
            reduction=reduction,
            device=device,
            seed=seed,
            **options,
        )
        type(self).constructed += 1
        self.images_seen = 0

    def _build_model(self) -> nn.Module:
        type(self).built += 1
        return super()._build_model()

    def _forward(self, tensor: torch.Tensor) -> torch.Tensor:
        self.images_seen += tensor.shape[0]
        return self.model(tensor)


class ExplodingTask(BaseTask):
    """A task whose metric computation always fails."""

    def compute_task_performance(self, pairs_distances_df):
        raise RuntimeError("boom: this task always fails")


def write_demo_toml(folder: Path, stimuli: DemoStimuli, model_spec: str = "tiny", extra: str = "") -> Path:
    """An experiment file in ``folder`` running every demo task with ``model_spec``."""
    text = demo_experiment_toml(model_spec, stimuli=str(stimuli.root), output="results", batch_size=64)
    path = folder / "experiment.toml"
    path.write_text(text.replace("cache = false", "cache = false\nnum_workers = 0") + extra, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_net() -> type[TinyFaceNet]:
    return TinyFaceNet


@pytest.fixture(scope="session")
def exploding_task() -> type[ExplodingTask]:
    return ExplodingTask


@pytest.fixture(scope="session")
def demo_toml() -> Callable[..., Path]:
    return write_demo_toml


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    TinyFaceNet.constructed = 0
    TinyFaceNet.built = 0


@pytest.fixture(scope="session")
def stimuli(tmp_path_factory: pytest.TempPathFactory) -> DemoStimuli:
    """5 identities x 3 views of the demo faces, with every pairs file."""
    return write_stimuli(tmp_path_factory.mktemp("stimuli"), identities=5, views=3)


@pytest.fixture
def registry() -> Registry:
    """The installed tasks and metrics, plus the models ``tiny`` and the task ``exploding``."""
    base = get_registry()
    fresh = Registry(plugins=base.plugins)
    for kind in ("task", "metric", "executor"):
        for entry in base.entries(kind):
            fresh.add(entry)
    fresh.add(Entry("model", ModelSpec("tiny", TinyFaceNet, "tiny test network"), "facebench-tests", "0"))
    fresh.add(Entry("task", TaskSpec("exploding", ExplodingTask, "always fails"), "facebench-tests", "0"))
    return fresh


@pytest.fixture
def use_registry(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Make experiments (and the CLI) use :func:`registry`."""
    monkeypatch.setattr("facebench.experiment.get_registry", lambda: registry)
    return registry
