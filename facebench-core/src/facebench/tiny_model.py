"""A tiny model for tests: conv -> ReLU -> pool -> linear on 32 px images, random weights.

Its layers ``conv`` (6 x 14 x 14) and ``fc`` (16) run once per forward pass, it builds in
milliseconds on a CPU, and it is seeded like every model (``seed``), so tests of tasks,
analyses, executors and exports get real embeddings without a download. Subclass it to add
counters or failures; override :meth:`default_preprocessing` for another input.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

from torch import nn

from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing


class TinyConvNet(BaseModel):
    """conv -> ReLU -> pool -> linear on 32 px images (see the module docstring)."""

    default_layers: ClassVar[tuple[str, ...]] = ("conv", "fc")

    def _build_model(self) -> nn.Module:
        return nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, 6, 5, stride=2),
                relu=nn.ReLU(),
                pool=nn.AdaptiveAvgPool2d(4),
                flat=nn.Flatten(),
                fc=nn.Linear(96, 16),
            )
        )

    def default_preprocessing(self) -> Preprocessing:
        """Resize to 32 px, no crop, pixel values 0..1 (no normalisation)."""
        return Preprocessing(resize=32, crop=None, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
