"""The layer contract: one output row per image, the batch first (checked in the meta-device trace
and on the first batch); NaN or infinity fails that model-layer and keeps the other layers."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from facebench.engine import embed_images
from facebench.errors import ConfigError, DataError
from facebench.manager import MultiModelTaskManager
from facebench.model import BaseModel
from facebench.store import EmbeddingStore
from facebench.tiny_data import write_task_data


class Collapse(nn.Module):
    """Mixes the images of a batch: the mean over the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=0)


class Transpose(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.t()


class Poison(nn.Module):
    """NaN for every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


class Contract(BaseModel):
    """conv -> pool -> flat -> collapse / transpose / poison branches (identity modules otherwise).
    ``meta=False`` makes the network unbuildable on the meta device, so only the first batch checks."""

    image_size = 32
    non_output_options = frozenset({"meta"})

    def __init__(self, meta: bool = True, **options) -> None:
        super().__init__(**{"device": "cpu", **options})
        self.meta = meta

    def _build_model(self) -> nn.Module:
        if not self.meta and torch.empty(0).is_meta:
            raise RuntimeError("not on the meta device")
        return _Branches()


class _Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            OrderedDict(conv=nn.Conv2d(3, 6, 3), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten())
        )
        self.collapse, self.transpose, self.poison = Collapse(), Transpose(), Poison()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x)
        self.collapse(features), self.transpose(features), self.poison(features)
        return features


@pytest.mark.parametrize("layer", ["collapse", "transpose"])
def test_a_layer_without_the_batch_first_is_refused_in_the_meta_trace(layer) -> None:
    model = Contract(extract_layers=[layer])
    with pytest.raises(
        ConfigError,
        match=rf"layer '{layer}' returned shape \(6,\) for a batch of 2|"
        rf"layer '{layer}' returned shape \(6, 2\) for a batch of 2",
    ):
        model.check_layers_before_building()
    assert model._model is None  # refused without building the network


@pytest.mark.parametrize(("layer", "shape"), [("collapse", r"\(6,\)"), ("transpose", r"\(6, 10\)")])
def test_a_layer_without_the_batch_first_fails_on_the_first_batch(layer, shape, images, tmp_path) -> None:
    model = Contract(meta=False, extract_layers=[layer])
    assert not model.check_layers_before_building()  # cannot be traced on the meta device
    with pytest.raises(ConfigError, match=rf"'{layer}' returned shape {shape} for a batch of 10 image"):
        embed_images(model, images, store=EmbeddingStore(tmp_path / "c"), batch_size=10, progress=False)


def test_a_nan_layer_fails_alone_and_the_other_layers_are_scored(tmp_path) -> None:
    from facebench_tasks.accuracy import AccuracyTask

    data = write_task_data(tmp_path / "data", identities=4, per_identity=3, size=32)
    model = Contract(extract_layers=["body.flat", "poison"])
    store = EmbeddingStore(tmp_path / "cache")
    embeddings = embed_images(model, [data.images / n for n in data.image_names], store=store, progress=False)
    assert (
        embeddings.layers == ["body.flat"]
        and "produced NaN or infinite values for 12 of 12" in (embeddings.failed_layers["poison"])
    )
    assert len(store.table(embeddings.identity, "poison", "flatten")) == 0  # no NaN row is stored
    with pytest.raises(DataError, match="NaN"):
        embeddings.table("poison")

    task = AccuracyTask(pairs_file_path=data.pairs, images_path=data.images, n_folds=2)
    manager = MultiModelTaskManager(
        [Contract(extract_layers=["body.flat", "poison"])], [task], cache_dir=None, progress=False
    )
    with manager:
        failures = manager.run_all_tasks_all_models(tmp_path / "out")
    rows = manager.tasks_performance_dfs[task.name]
    assert list(rows["Layer Name"]) == ["body.flat"] and np.isfinite(rows["Cross-Validated Accuracy"]).all()
    assert [(f.layer, f.stage) for f in failures] == [("poison", "embed")] and "NaN" in failures[0].error
    assert manager.status != "completed"


class Structured(nn.Module):
    """Returns ``kind``: a tuple, a dict or a list of strings around the input's mean over space."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor):
        pooled = x.mean(dim=(2, 3))
        if self.kind == "tuple":
            return pooled, pooled * 0
        if self.kind == "dict":
            return {"first": pooled + 1, "second": pooled * 0}
        return ["not", "tensors"]


class StructuredModel(BaseModel):
    image_size = 32
    non_output_options = frozenset({"kind"})

    def __init__(self, kind: str = "tuple", **options) -> None:
        super().__init__(**{"device": "cpu", **options})
        self.kind = kind

    def _build_model(self) -> nn.Module:
        return nn.Sequential(OrderedDict(block=Structured(self.kind)))


def test_a_structured_layer_output_gives_its_documented_tensor() -> None:
    batch = torch.rand(3, 3, 32, 32)
    pooled = batch.mean(dim=(2, 3))
    tuple_rows = StructuredModel("tuple", extract_layers=["block"]).get_output(batch)["block"]
    dict_rows = StructuredModel("dict", extract_layers=["block"]).get_output(batch)["block"]
    assert torch.allclose(tuple_rows, pooled) and torch.allclose(
        dict_rows, pooled + 1
    )  # element 0 / first value
    with pytest.raises(
        ConfigError, match=r"model 'StructuredModel': layer 'block' returned str, not a tensor"
    ):
        StructuredModel("list", extract_layers=["block"]).get_output(batch)
