"""Test-wide guards (no test may reach the network; hub libraries run offline) and shared fixtures."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The user's own cache and data folders (embeddings, option and digest memos, datasets) stay
# untouched: tests, and the commands they start, use folders of their own.
for _variable in ("XDG_CACHE_HOME", "XDG_DATA_HOME"):
    os.environ.setdefault(_variable, tempfile.mkdtemp(prefix=f"facebench-tests-{_variable.lower()}-"))


def _is_local(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # unix sockets


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection to a non-loopback address."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if not _is_local(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-block 32 px ViT and its image processor, saved with save_pretrained (random weights,
    seeded): the offline stand-in for a Hugging Face hub folder."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    folder = tmp_path_factory.mktemp("tiny-vit")
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``nox`` runs ``-n auto --dist loadgroup``) each test file runs on one
    worker, so its module fixtures are built once; the Ray tests share one worker (one local Ray
    at a time: a test checks that a killed run leaves no Ray process), and so do the release
    tests (they build wheels and sdists from the same package folders)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        path = Path(str(item.fspath))
        if path.parent.name == "executors" and path.name.startswith("test_ray"):
            group = "ray"
        elif path.parent.name == "release":
            group = "release"
        else:
            group = str(path)
        item.add_marker(pytest.mark.xdist_group(group))
