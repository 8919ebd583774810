"""What the torchvision and timm families share: an architecture by name, ImageNet or
face-trained weights, and the classifier's input as the final output.

- ``arch`` is checked against the library's list; an unknown one is answered with the closest
  names (:class:`UnknownNameError`).
- ``num_identities`` sizes the classifier for a face-trained checkpoint given by
  ``weights_path``; a checkpoint that also holds a training margin head (ArcFace / CosFace
  weights) loads its backbone and the head is set aside with a warning
  (:func:`facebench_models.checkpoints.load_backbone`).
- The final output (``output``, the default layer) is what the network's classifier reads: the
  pooled, pre-logits features (ResNet-50: 2,048 values; ViT-B/16: the 768-d class token after the
  last norm), captured by a pre-hook on the classifier in the same forward pass. Every
  ``named_modules()`` layer, the classifier included, is extractable too.
- ``mean`` on a 4-D layer output averages its spatial axes whichever axis holds the channels:
  a channels-last ``(B, H, W, C)`` output (Swin stages) is read as such
  (:mod:`facebench_models.layouts`); one whose layout cannot be told is refused.
"""

from __future__ import annotations

import abc
import difflib
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from facebench.errors import ConfigError, UnknownNameError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.registry import unknown_name_message
from facebench_models.checkpoints import load_backbone
from facebench_models.layouts import SpatialLayout

MAX_LISTED = 20  # unknown arch: list every known name up to this many, else point to --available


class ClassifierFamily(SpatialLayout, BaseModel):
    """An image-classification network of a library, picked by ``arch``."""

    default_layers: ClassVar[tuple[str, ...]] = ()  # the classifier's input (see the module doc)
    default_reduction: ClassVar[str] = "flatten"
    family: ClassVar[str] = ""
    weights_options: ClassVar[frozenset[str]] = frozenset({"pretrained"})  # weights_path overrides it

    def __init__(
        self,
        name: str | None = None,
        arch: str = "",
        pretrained: bool = True,
        num_identities: int | None = None,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(name=name, weights_path=weights_path, **options)
        self.arch = str(arch)
        self.pretrained = bool(pretrained)
        if num_identities is not None:
            if isinstance(num_identities, bool) or not isinstance(num_identities, int) or num_identities < 1:
                raise ConfigError(f"model {self.name!r}: num_identities must be a positive integer")
            if self.pretrained and self.weights_path is None:
                raise ConfigError(
                    f"model {self.name!r}: num_identities sizes the classifier of a face-trained checkpoint; "
                    f"give weights_path=<checkpoint> with it (or pretrained=false for random weights)"
                )
        self.num_identities = num_identities
        self.ignored_head: list[str] = []  # margin-head keys set aside from weights_path

    # ----------------------------------------------------------------- to implement
    @classmethod
    @abc.abstractmethod
    def available_architectures(cls) -> list[str]:
        """Every ``arch`` name this family accepts."""

    @abc.abstractmethod
    def _create(self, num_classes: int | None) -> torch.nn.Module:
        """The network with the requested weights (hub ones when :meth:`_uses_hub_weights`)."""

    @abc.abstractmethod
    def _classifier(self, network: torch.nn.Module) -> torch.nn.Module | None:
        """The module whose input is the final output (None: the network's own output)."""

    @abc.abstractmethod
    def default_preprocessing(self) -> Preprocessing:
        """The preprocessing the weights were trained with."""

    # ----------------------------------------------------------------- shared
    def check_arch(self, known: list[str]) -> None:
        """Raise :class:`UnknownNameError` with suggestions when ``arch`` is not in ``known``."""
        if self.arch in known:
            return
        listing = f"`facebench describe {self.family} --available` lists them"
        if len(known) <= MAX_LISTED:
            message = f"{unknown_name_message(f'{self.family} architecture', self.arch, known)} ({listing})"
        else:
            close = difflib.get_close_matches(self.arch, known, n=5, cutoff=0.6)
            guess = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
            message = (
                f"unknown {self.family} architecture {self.arch!r}{guess} {len(known)} are known; {listing}"
            )
        raise UnknownNameError(f"model {self.name!r}: {message}")

    def _uses_hub_weights(self) -> bool:
        return self.pretrained and self.weights_path is None

    def _build_model(self) -> torch.nn.Module:
        network = self._create(self.num_identities)
        if self.weights_path is not None:
            self.ignored_head = load_backbone(network, self.read_file(self.weights_path), self.name)
        return network

    def _forward(self, tensor: Tensor) -> Any:
        classifier = self._classifier(self.model)
        if classifier is None:
            return self.model(tensor)
        captured: list[Tensor] = []
        hook = classifier.register_forward_pre_hook(lambda _module, inputs: captured.append(inputs[0]))
        try:
            output = self.model(tensor)
        finally:
            hook.remove()
        return captured[0] if captured else output
