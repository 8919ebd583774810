"""A model's identity (the cache key) changes when the code that computes its embeddings does."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from facebench import provenance

LAB_MODULE = """
import torchvision
from facebench.model import BaseModel


class LabNet(BaseModel):
    def _build_model(self):
        return torchvision.models.{arch}(num_classes=8)
"""


@pytest.fixture
def lab_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write ``labnet.py`` with a given architecture and (re-)import it, as a lab editing its
    model file and re-running would."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(arch: str):
        (tmp_path / "labnet.py").write_text(LAB_MODULE.format(arch=arch))
        sys.modules.pop("labnet", None)
        importlib.invalidate_caches()
        return importlib.import_module("labnet")

    yield load
    sys.modules.pop("labnet", None)


def test_editing_build_model_changes_the_identity(lab_module) -> None:
    resnet18 = lab_module("resnet18").LabNet(device="cpu").identity
    same_again = lab_module("resnet18").LabNet(device="cpu").identity
    resnet34 = lab_module("resnet34").LabNet(device="cpu")
    assert same_again == resnet18  # re-importing unchanged code keeps the cache
    assert resnet34.identity != resnet18  # the edited _build_model does not
    code = resnet34.describe()["code"]
    assert code["modules"] == ["labnet"] and code["distribution"] is None


def test_a_new_distribution_version_changes_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from facebench_example.model import DlibResNet

    before = DlibResNet(device="cpu")
    code = before.describe()["code"]
    assert code["distribution"] == "facebench-example-plugin"
    assert code["version"] == provenance.distribution_version("facebench-example-plugin")
    assert code["modules"] == ["facebench_example.model"]  # facebench-core's BaseModel is left out
    monkeypatch.setattr(provenance, "distribution_version", lambda name: "99.0")
    after = DlibResNet(device="cpu")
    assert after.describe()["code"]["version"] == "99.0"
    assert after.identity != before.identity


def test_base_classes_outside_the_core_are_part_of_the_digest(lab_module, tmp_path: Path) -> None:
    lab_module("resnet18")
    (tmp_path / "labchild.py").write_text("from labnet import LabNet\n\n\nclass Child(LabNet):\n    pass\n")
    sys.modules.pop("labchild", None)
    child = importlib.import_module("labchild").Child
    try:
        assert provenance.source_modules(child) == ["labchild", "labnet"]
        before = provenance.code_identity(child)["source_sha256"]
        (tmp_path / "labnet.py").write_text(LAB_MODULE.format(arch="resnet34"))  # only the base changes
        assert provenance.code_identity(child)["source_sha256"] != before
    finally:
        sys.modules.pop("labchild", None)


def test_the_cache_records_the_code_of_the_model(tiny, images, tmp_path: Path) -> None:
    from facebench.engine import embed_images
    from facebench.store import EmbeddingStore

    model = tiny()
    with EmbeddingStore(tmp_path / "cache") as store:
        embed_images(model, images[:2], store=store, num_workers=0, progress=False)
        recorded = store.read_metadata(model.identity)
    assert recorded is not None
    assert recorded["code"] == provenance.code_identity(type(model))
    assert recorded["code"]["source_sha256"] and recorded["code"]["modules"]
