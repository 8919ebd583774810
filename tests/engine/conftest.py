"""A tiny counting model and 32 px test images for the engine tests."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facebench.model import BaseModel, load_weights


class TinyNet(BaseModel):
    """conv -> in-place ReLU -> pool -> linear, on 32 px images; counts what it sees."""

    default_layers = ("conv",)
    image_size = 32
    non_output_options = frozenset({"fail_on_call"})  # a test switch: not part of the identity

    def __init__(self, *args, fail_on_call: int | None = None, **kwargs) -> None:
        kwargs.setdefault("device", "cpu")
        super().__init__(*args, **kwargs)
        self.forward_calls = 0
        self.builds = 0
        self.seen: list[str] = []  # a digest of each image tensor that went through a forward pass
        self.fail_on_call = fail_on_call

    def _build_model(self) -> nn.Module:
        self.builds += 1
        net = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, 4, 3, padding=1),
                relu=nn.ReLU(inplace=True),
                pool=nn.AdaptiveAvgPool2d(2),
                flat=nn.Flatten(),
                fc=nn.Linear(16, 5),
            )
        )
        if self.weights_path is not None:
            load_weights(net, self.weights_path)
        return net

    def _forward(self, tensor: torch.Tensor) -> torch.Tensor:
        self.forward_calls += 1
        if self.fail_on_call is not None and self.forward_calls == self.fail_on_call:
            raise KeyboardInterrupt("simulated interruption")
        self.seen.extend(tensor_digest(image) for image in tensor)
        return self.model(tensor)


def tensor_digest(tensor: torch.Tensor) -> str:
    return hashlib.sha1(tensor.contiguous().cpu().numpy().tobytes()).hexdigest()


def make_image(path: Path, seed: int, size: int = 32) -> Path:
    """A random RGB PNG at ``path``."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "images"
    folder.mkdir()
    return [make_image(folder / f"face{i}.png", seed=i) for i in range(10)]


@pytest.fixture
def tiny() -> type[TinyNet]:
    """The TinyNet class (test modules cannot import conftest under --import-mode=importlib)."""
    return TinyNet


@pytest.fixture
def digest():
    return tensor_digest
