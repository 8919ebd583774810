"""The cache identity covers all of a model's code and every file it reads; the layer checks run
on the network itself, never on names a cache recorded."""

from __future__ import annotations

import importlib
import os
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from facebench import file_digests
from facebench.engine import embed_images
from facebench.errors import ConfigError
from facebench.model import BaseModel
from facebench.registry import Entry, ModelSpec, Registry
from facebench.store import EmbeddingStore
from facebench.testing import check_model

NET_MODULE = """
from torch import nn


def network():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, {width}))
"""

MODEL_MODULE = """
from facebench.model import BaseModel
from labpkg.net import network


class LabModel(BaseModel):
    image_size = 32

    def _build_model(self):
        return network()
"""


@pytest.fixture
def lab_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``labpkg`` (a model class in ``labpkg/model.py``, its network in ``labpkg/net.py``), written
    with a given output width and (re-)imported, as a lab editing its helper module would."""
    root = tmp_path / "src"
    (root / "labpkg").mkdir(parents=True)
    (root / "labpkg" / "__init__.py").write_text("")
    (root / "labpkg" / "model.py").write_text(MODEL_MODULE)
    monkeypatch.syspath_prepend(str(root))

    def load(width: int) -> type[BaseModel]:
        (root / "labpkg" / "net.py").write_text(NET_MODULE.format(width=width))
        for name in [name for name in sys.modules if name.split(".")[0] == "labpkg"]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return importlib.import_module("labpkg.model").LabModel

    yield load
    for name in [name for name in sys.modules if name.split(".")[0] == "labpkg"]:
        del sys.modules[name]


def test_editing_the_network_in_a_helper_module_computes_again(lab_package, images, tmp_path) -> None:
    store = EmbeddingStore(tmp_path / "cache")
    first = embed_images(lab_package(5)(device="cpu"), images, store=store, progress=False, num_workers=0)
    again = embed_images(lab_package(5)(device="cpu"), images, store=store, progress=False, num_workers=0)
    edited = embed_images(lab_package(7)(device="cpu"), images, store=store, progress=False, num_workers=0)
    assert first.computed == len(images) and again.cached == len(images)  # unchanged code: cached
    assert edited.identity != first.identity and edited.computed == len(images)
    assert edited.table("output").dim == 7  # the edited network's outputs, not the cached ones
    assert lab_package(7)(device="cpu").describe()["code"]["packages"] == ["labpkg"]


class WithConfig(BaseModel):
    """Reads a second file (a scale) besides its weights, declared in data_files."""

    image_size = 32
    non_output_options = frozenset({"config_path"})

    def __init__(self, config_path: str = "", **options) -> None:
        super().__init__(**{"device": "cpu", **options})
        self.config_path = config_path

    def data_files(self) -> list[Path]:
        return [*super().data_files(), Path(self.config_path)]

    def _build_model(self) -> nn.Module:
        scale = torch.load(self.read_file(self.config_path), weights_only=True)
        linear = nn.Linear(3, 2)
        nn.init.constant_(linear.weight, float(scale))
        nn.init.zeros_(linear.bias)
        return nn.Sequential(OrderedDict(pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(), fc=linear))


def test_a_file_read_through_read_file_is_part_of_the_identity(tmp_path, images) -> None:
    config = tmp_path / "scale.pt"
    torch.save(torch.tensor(1.0), config)
    store = EmbeddingStore(tmp_path / "cache")
    before = embed_images(WithConfig(str(config)), images, store=store, progress=False, num_workers=0)
    torch.save(torch.tensor(2.0), config)
    after = embed_images(WithConfig(str(config)), images, store=store, progress=False, num_workers=0)
    assert after.identity != before.identity and after.computed == len(images)
    assert after.vectors("output", images[:1]) == pytest.approx(2 * before.vectors("output", images[:1]))


class Sneaky(WithConfig):
    """Reads its config file without declaring it: stale after the file changes."""

    def data_files(self) -> list[Path]:
        return BaseModel.data_files(self)


def test_read_file_refuses_an_undeclared_file(tmp_path) -> None:
    config = tmp_path / "scale.pt"
    torch.save(torch.tensor(1.0), config)
    with pytest.raises(ConfigError, match=r"scale\.pt.*not among its data_files\(\)"):
        _ = Sneaky(str(config)).model


class BehindTheBack(Sneaky):
    """Loads the file directly, bypassing read_file."""

    def _build_model(self) -> nn.Module:
        scale = torch.load(self.config_path, weights_only=True)
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2, bias=bool(scale)))


def test_check_model_fails_a_model_reading_an_undeclared_file(tmp_path) -> None:
    config = tmp_path / "scale.pt"
    torch.save(torch.tensor(1.0), config)
    registry = Registry()
    registry.add(Entry("model", ModelSpec("sneaky", BehindTheBack), "lab-plugin", "0.1"))  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=r"scale\.pt.*not among its data_files"):
        check_model("sneaky", registry=registry, config_path=str(config))
    registry = Registry()
    registry.add(Entry("model", ModelSpec("declared", WithConfig), "lab-plugin", "0.1"))  # type: ignore[arg-type]
    check_model("declared", registry=registry, config_path=str(config))  # declared and read_file: passes


def test_pretrained_does_not_change_the_key_when_weights_path_replaces_it(tmp_path) -> None:
    from facebench_models.iresnet import IResNetModel
    from facebench_models.torchvision_family import TorchvisionModel

    weights = tmp_path / "backbone.pth"
    weights.write_bytes(b"any bytes: the identity reads the file's digest, not its tensors")
    for model_class, arch in ((IResNetModel, "iresnet18"), (TorchvisionModel, "resnet18")):
        on = model_class(arch=arch, pretrained=True, weights_path=weights, device="cpu")
        off = model_class(arch=arch, pretrained=False, weights_path=weights, device="cpu")
        assert on.identity == off.identity, model_class
        hub, random = (
            model_class(arch=arch, device="cpu"),
            model_class(arch=arch, pretrained=False, device="cpu"),
        )
        assert hub.identity != random.identity  # without weights_path it chooses the weights


def test_the_weights_digest_is_remembered_across_processes(tmp_path, monkeypatch) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 1000)
    memo = tmp_path / "memo"
    digest = file_digests.file_sha256(weights, memo)
    assert len(list(memo.iterdir())) == 1
    monkeypatch.setattr(file_digests, "_IN_PROCESS", {})  # a new process

    def no_hashing(*args, **kwargs):
        raise AssertionError("the file was hashed again")

    monkeypatch.setattr(file_digests.hashlib, "file_digest", no_hashing)
    assert file_digests.file_sha256(weights, memo) == digest
    monkeypatch.undo()

    # the same size and modification time, other bytes: the change time differs, so it is hashed
    stat = weights.stat()
    weights.write_bytes(b"b" * 1000)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    monkeypatch.setattr(file_digests, "_IN_PROCESS", {})
    import hashlib

    assert file_digests.file_sha256(weights, memo) == hashlib.sha256(b"b" * 1000).hexdigest()


class Reusing(BaseModel):
    """``relu`` runs twice per pass; ``fc`` runs once."""

    image_size = 32

    def __init__(self, **options) -> None:
        super().__init__(**{"device": "cpu", **options})

    def _build_model(self) -> nn.Module:
        return _TwiceRelu()


class _TwiceRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu, self.fc = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.relu(self.conv(x)))
        return self.fc(x.mean(dim=(2, 3)))


def test_layer_checks_run_on_the_network_not_on_names_the_cache_recorded(tmp_path, images) -> None:
    store = EmbeddingStore(tmp_path / "cache")
    first = embed_images(Reusing(extract_layers=["fc"]), images, store=store, progress=False, num_workers=0)
    # a warm cache for the reused layer: its table holds every image (the identity ignores layers)
    keys = list(dict.fromkeys(first.keys.values()))
    store.table(first.identity, "relu", "flatten").write(keys, torch.zeros(len(keys), 3).numpy())
    with pytest.raises(ConfigError, match=r"'relu' runs 2 times"):
        embed_images(Reusing(extract_layers=["relu"]), images, store=store, progress=False, num_workers=0)
    # stale names recorded for the identity do not refuse a layer the network has
    store.write_metadata(first.identity, {"layer_names": ["fc"]})
    valid = embed_images(Reusing(extract_layers=["conv"]), images, store=store, progress=False, num_workers=0)
    assert valid.computed == len(set(keys))
