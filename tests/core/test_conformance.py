"""facebench.testing: every built-in model, task and metric (and the example plugin's) passes the
conformance checks; the checks fail on plugins that break the contract."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import open_clip
import pandas as pd
import pytest
import torch
from torch import nn

from facebench.model import BaseModel
from facebench.registry import Entry, MetricSpec, ModelSpec, Registry, TaskSpec, get_registry
from facebench.task import BaseTask
from facebench.testing import TaskData, check_metric, check_model, check_task

FIXTURES = Path(__file__).parents[1] / "fixtures"
TINY_DINO = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "mlp_ratio": 2,
    "image_size": 32,
    "patch_size": 8,
}


# Offline, tiny configurations of every registered model (a new model must be added here).
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "vgg16": {"pretrained": False, "resize": 32, "crop": 32},
    "dinov2": {"config": TINY_DINO, "pretrained": False, "image_size": 32},
    "clip": {"version": "facebench-tiny-vit", "pretrained": False},
    "dlib-resnet": {},
    "torchvision": {"arch": "resnet18", "pretrained": False, "resize": 32, "crop": 32},
    "timm": {"arch": "resnet10t", "pretrained": False, "resize": 32, "crop": 32},
    "huggingface": {},  # version: the tiny ViT folder
    "iresnet": {"arch": "iresnet18", "pretrained": False},
    "facenet": {"pretrained": False, "resize": 80, "crop": 80},
}
# Fast settings for tasks whose defaults bootstrap or train at length.
TASK_OPTIONS: dict[str, dict[str, Any]] = {
    "accuracy": {"n_folds": 4},
    "adaptation": {"max_epochs": 3, "patience": 1, "hidden_dim": 8, "progress": False},
    "conditioned-average-distances": {"n_bootstrap": 50},
    "correlation": {"n_bootstrap": 50},
    "probe": {"C": 1.0, "n_folds": 3},
    "relative-difference": {"groups": ["upright", "inverted"], "n_bootstrap": 50},
    "rsa": {"n_bootstrap": 20},
}


def test_every_registered_model_has_a_conformance_case() -> None:
    assert set(get_registry().names("model")) <= set(MODEL_OPTIONS)


@pytest.mark.parametrize("name", sorted(MODEL_OPTIONS))
def test_built_in_models_conform(name: str, tiny_vit: Path) -> None:
    if name not in get_registry().names("model"):
        pytest.skip(f"{name} is not installed")
    if name == "dlib-resnet":
        from facebench_example.dlib_resnet import default_weights_path

        if default_weights_path() is None:
            pytest.skip("dlib's weights (pip install face_recognition_models) are not installed")
    open_clip.add_model_config(FIXTURES / "models" / "facebench-tiny-vit.json")
    options = {"version": str(tiny_vit)} if name == "huggingface" else MODEL_OPTIONS[name]
    check_model(name, all_layers=name not in ("vgg16", "facenet"), **options)


@pytest.mark.parametrize("name", get_registry().names("task"))
def test_built_in_tasks_conform(name: str) -> None:
    check_task(name, **TASK_OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", get_registry().names("metric"))
def test_built_in_metrics_conform(name: str) -> None:
    check_metric(name)


def test_the_fixtures_come_from_the_pytest_plugin(
    facebench_task_data: TaskData, facebench_images: Path
) -> None:
    pairs = pd.read_csv(facebench_task_data.pairs)
    assert {"img1", "img2", "truth", "distance", "condition", "fold"} <= set(pairs.columns)
    assert pairs["truth"].sum() == len(pairs) / 2  # as many same as different pairs
    assert all((facebench_task_data.images / name).is_file() for name in pairs["img1"])
    assert len(list(facebench_images.glob("*/*.png"))) == 30


# ---------------------------------------------------------------------------------- the checks fail
class Net(BaseModel):
    default_layers = ("conv",)
    image_size = 16

    def __init__(self, width: int = 4, **options: Any) -> None:
        super().__init__(**{"device": "cpu", **options})
        self.width = width

    def _build_model(self) -> nn.Module:
        return nn.Sequential(OrderedDict(conv=nn.Conv2d(3, self.width, 3), pool=nn.AdaptiveAvgPool2d(1)))

    def model_options(self) -> dict[str, Any]:  # hand-written and incomplete: the stale-cache bug
        return {}


class Reseeding(Net):
    def _build_model(self) -> nn.Module:
        torch.manual_seed(torch.seed())  # ignores the seed: different weights per build
        return super()._build_model()


def registry_with(kind: str, spec: Any) -> Registry:
    registry = Registry()
    registry.add(Entry(kind, spec, "lab-plugin", "0.1"))  # type: ignore[arg-type]
    return registry


def test_check_model_catches_an_option_missing_from_the_identity() -> None:
    with pytest.raises(AssertionError, match=r"identity did not change with width=5"):
        check_model("net", registry=registry_with("model", ModelSpec("net", Net)))


def test_check_model_catches_weights_that_ignore_the_seed() -> None:
    class Declared(Reseeding):
        model_options = BaseModel.model_options  # derived: the identity part passes

    with pytest.raises(AssertionError, match="differs between two builds"):
        check_model("net", registry=registry_with("model", ModelSpec("net", Declared)))


def asymmetric(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).clamp(min=0).sum(dim=1)


def test_check_metric_catches_an_asymmetric_metric() -> None:
    with pytest.raises(AssertionError, match=r"d\(a, b\) != d\(b, a\)"):
        check_metric("asym", registry=registry_with("metric", MetricSpec("asym", asymmetric)))


class Undocumented(BaseTask):
    """Plots a column its results do not have."""

    plot_columns = ("Mean Distance",)

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        return self.result_row({"Mean": float(pairs_distances_df["model_computed_distance"].mean())})


def test_check_task_catches_an_undocumented_result_column() -> None:
    registry = registry_with("task", TaskSpec("undocumented", Undocumented))
    with pytest.raises(AssertionError, match="plot column 'Mean Distance' is not in the result"):
        check_task("undocumented", registry=registry)
