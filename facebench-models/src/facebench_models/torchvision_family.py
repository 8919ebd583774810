"""``torchvision``: any image-classification network of ``torchvision.models``.

- ``arch``: a name of ``torchvision.models.list_models(module=torchvision.models)`` (``resnet50``,
  ``vit_b_16``, ``convnext_tiny``, ``efficientnet_b0``, ...).
- ``weights``: a weights enum name of that architecture (``IMAGENET1K_V2``; ``DEFAULT``, the
  default, is torchvision's recommended one); ``pretrained=false`` for random weights under
  ``seed``; ``weights_path`` (+ ``num_identities``) for a face-trained checkpoint.
- Preprocessing: read off the weights' own ``transforms()`` (resize, crop, interpolation,
  mean/std); random weights and checkpoints use the architecture's default weights' values.
- Layers: ``named_modules()`` names (``layer4``, ``avgpool``, ``fc`` for ResNets;
  ``encoder.layers.encoder_layer_N`` for ViTs; ``features.N`` for ConvNeXt / EfficientNet); the
  final output is the classifier's input (:mod:`facebench_models.classifier_family`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.errors import UnknownNameError
from facebench.preprocessing import Preprocessing
from facebench.registry import unknown_name_message
from facebench_models.classifier_family import ClassifierFamily
from facebench_models.downloads import torch_hub_download

DEFAULT_WEIGHTS = "DEFAULT"


class TorchvisionModel(ClassifierFamily):
    """A torchvision classification network; ``resnet50`` with its default ImageNet weights by default.

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    family: ClassVar[str] = "torchvision"

    def __init__(
        self,
        name: str | None = None,
        arch: str = "resnet50",
        weights: str = DEFAULT_WEIGHTS,
        pretrained: bool = True,
        num_identities: int | None = None,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        """Options of the family (and BaseModel's).

        - ``arch``: a torchvision classification architecture (see ``--available``).
        - ``weights``: a weights enum name of that architecture (``IMAGENET1K_V2``), or DEFAULT.
        - ``pretrained``: the weights named by ``weights`` (true) or random weights under ``seed`` (false).
        - ``num_identities``: the classifier size of a face-trained checkpoint given by ``weights_path``.
        - ``weights_path``: a local state dict or training checkpoint (a margin head in it is set aside).
        """
        super().__init__(
            name=name,
            arch=arch,
            pretrained=pretrained,
            num_identities=num_identities,
            weights_path=weights_path,
            **options,
        )
        self.weights = str(weights)
        self.check_arch(self.available_architectures())
        if self._uses_hub_weights():
            self._weights_entry(self.weights)  # an unknown weights name fails now

    @classmethod
    def available_architectures(cls) -> list[str]:
        import torchvision

        return list(torchvision.models.list_models(module=torchvision.models))

    # ----------------------------------------------------------------- weights
    def _weights_enum(self) -> Any:
        """The architecture's weights enum (None for an architecture without published weights)."""
        from torchvision.models import get_model_weights

        try:
            return get_model_weights(self.arch)
        except (ValueError, KeyError):
            return None

    def _weights_entry(self, name: str) -> Any:
        """The weights called ``name`` (``DEFAULT`` resolved), or :class:`UnknownNameError`."""
        enum = self._weights_enum()
        names = [entry.name for entry in enum] if enum is not None else []
        if name == DEFAULT_WEIGHTS and enum is not None:
            return enum.DEFAULT
        if name not in names:
            message = unknown_name_message(f"weights for {self.arch!r}", name, [DEFAULT_WEIGHTS, *names])
            hint = "" if names else f"; torchvision publishes none for {self.arch!r}: use pretrained=false"
            raise UnknownNameError(f"model {self.name!r}: {message}{hint}")
        return enum[name]

    def hub_weights_id(self) -> str | None:
        if not self._uses_hub_weights():
            return None
        entry = self._weights_entry(self.weights)
        return f"torchvision:{type(entry).__name__}.{entry.name}"

    # ----------------------------------------------------------------- preprocessing
    def default_preprocessing(self) -> Preprocessing:
        """The resize, crop, interpolation and mean/std of the weights' ``transforms()``."""
        if self._uses_hub_weights():
            entry = self._weights_entry(self.weights)
        else:
            enum = self._weights_enum()
            entry = enum.DEFAULT if enum is not None else None
        if entry is None:
            return Preprocessing()
        return preprocessing_of(entry.transforms())

    # ----------------------------------------------------------------- building
    def _create(self, num_classes: int | None) -> torch.nn.Module:
        from torchvision.models import get_model

        if not self._uses_hub_weights():
            kwargs = {} if num_classes is None else {"num_classes": num_classes}
            return get_model(self.arch, weights=None, **kwargs)
        entry = self._weights_entry(self.weights)
        with torch_hub_download(f"torchvision {self.arch} weights {entry.name}", entry.url):
            # the builder with weights= also sets what they need (inception's transform_input, ...)
            return get_model(self.arch, weights=entry)

    def prefix_tokens(self) -> int:
        """The class token of a ViT (``class_token``), else none."""
        return 1 if hasattr(self.model, "class_token") else 0

    def network_channels_last(self) -> bool:
        """torchvision's Swin stages (``features.N``) and ``norm`` give ``(B, H, W, C)``."""
        from torchvision.models import SwinTransformer

        return isinstance(self.model, SwinTransformer)

    def declared_layouts(self) -> dict[str, bool]:
        """ConvNeXt's ``CNBlock``, which permutes its channels-last middle back to ``(B, C, H, W)``."""
        return {"CNBlock": False}

    def _classifier(self, network: torch.nn.Module) -> torch.nn.Module | None:
        """The last ``Linear`` layer (``fc``, ``classifier.6``, ``heads.head``, ...)."""
        linear = [module for _, module in network.named_modules() if isinstance(module, torch.nn.Linear)]
        return linear[-1] if linear else None


def preprocessing_of(transform: Any) -> Preprocessing:
    """torchvision's ``ImageClassification`` preset as a :class:`Preprocessing`."""
    return Preprocessing(
        resize=_size(transform.resize_size),
        crop=_size(transform.crop_size),
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        interpolation=transform.interpolation.value,
    )


def _size(size: list[int]) -> int | tuple[int, int]:
    return size[0] if len(size) == 1 else (size[0], size[1])
