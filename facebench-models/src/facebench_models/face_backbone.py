"""What the face-recognition backbones (``iresnet``, ``facenet``) share: an architecture by
name, weights only from a local file (no hub), random weights on request, a fixed input."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.errors import UnknownNameError, WeightsError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.registry import unknown_name_message
from facebench_models.checkpoints import load_backbone


class FaceBackbone(BaseModel):
    """A face-recognition network whose published weights are local files (``weights_path``)."""

    default_layers: ClassVar[tuple[str, ...]] = ()  # the embedding
    default_reduction: ClassVar[str] = "flatten"
    family: ClassVar[str] = ""
    weights_hint: ClassVar[str] = ""  # where the published weights are
    weights_options: ClassVar[frozenset[str]] = frozenset({"pretrained"})  # weights_path overrides it

    def __init__(
        self,
        name: str | None = None,
        arch: str = "",
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name=name, weights_path=weights_path, **options)
        self.arch = str(arch)
        self.pretrained = bool(pretrained)
        known = self.available_architectures()
        if self.arch not in known:
            message = unknown_name_message(f"{self.family} architecture", self.arch, known)
            raise UnknownNameError(f"model {self.name!r}: {message}")
        self.ignored_head: list[str] = []

    @classmethod
    @abc.abstractmethod
    def available_architectures(cls) -> list[str]:
        """Every ``arch`` name this family accepts."""

    @abc.abstractmethod
    def _network(self) -> torch.nn.Module:
        """The architecture with PyTorch's default initialisation."""

    @abc.abstractmethod
    def default_preprocessing(self) -> Preprocessing:
        """The input the published weights expect."""

    def _build_model(self) -> torch.nn.Module:
        if self.weights_path is None and self.pretrained:
            raise WeightsError(
                f"model {self.name!r}: {self.family} weights are not downloaded by facebench; pass "
                f"weights_path=<a local state dict> ({self.weights_hint}), or pretrained=false for "
                f"random weights"
            )
        network = self._network()
        if self.weights_path is not None:
            self.ignored_head = load_backbone(network, self.read_file(self.weights_path), self.name)
        return network
