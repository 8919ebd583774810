"""VGG16 from torchvision: ImageNet weights, a face-trained checkpoint, or random weights.

- Default layer: ``classifier.4``, the 4096-d penultimate representation (fc7 after its ReLU),
  reduced with ``flatten``. ``features.N`` (convolutions and their ReLUs, pools) and every
  ``classifier.N`` are extractable; ``facebench layers vgg16`` lists them. Flattened
  ``features.*`` maps are large (``features.29``: 100,352 values per image); ``reduction=mean``
  averages them over space to one value per channel.
- Preprocessing: that of ``VGG16_Weights.IMAGENET1K_V1`` — resize to 256 (bilinear), centre
  crop 224, ImageNet mean/std — also for random weights and checkpoints; face-trained VGG16s
  may need their own: change it with the options ``resize``, ``crop``, ``mean``, ``std``,
  ``grayscale``, ``interpolation`` (or give ``preprocess_function``).
- ``weights_path``: a local checkpoint (a state dict or ``{'state_dict': ...}``, ``module.``
  prefixes stripped, loaded with ``weights_only=True``); it takes precedence over ``pretrained``.
  ``num_identities`` sizes the last layer for face-trained checkpoints (e.g. 8,749 identities).
- ``pretrained=false``: random weights (the untrained-network control), reproducible by ``seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.errors import ConfigError
from facebench.model import BaseModel, load_weights
from facebench.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from facebench_models.downloads import torch_hub_download

IMAGENET_WEIGHTS = "IMAGENET1K_V1"


class Vgg16Model(BaseModel):
    """torchvision VGG16; ImageNet weights by default.

    - ``pretrained``: ImageNet weights (true) or random weights (false).
    - ``num_identities``: the size of the last layer of a face-trained checkpoint.

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    default_layers: ClassVar[tuple[str, ...]] = ("classifier.4",)
    default_reduction: ClassVar[str] = "flatten"
    weights_options: ClassVar[frozenset[str]] = frozenset({"pretrained"})  # weights_path overrides it

    def __init__(
        self,
        name: str | None = None,
        pretrained: bool = True,
        num_identities: int | None = None,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            name=name,
            weights_path=weights_path,
            **options,
        )
        if num_identities is not None:
            if isinstance(num_identities, bool) or not isinstance(num_identities, int) or num_identities < 1:
                raise ConfigError(f"model {self.name!r}: num_identities must be a positive integer")
            if pretrained and weights_path is None:
                raise ConfigError(
                    f"model {self.name!r}: num_identities sizes the last layer of a face-trained checkpoint; "
                    f"give weights_path=<checkpoint> with it (or pretrained=false for random weights)"
                )
        self.pretrained = bool(pretrained)
        self.num_identities = num_identities

    def _weights(self) -> Any:
        from torchvision.models import VGG16_Weights

        return VGG16_Weights[IMAGENET_WEIGHTS]

    def _uses_hub_weights(self) -> bool:
        return self.pretrained and self.weights_path is None

    def hub_weights_id(self) -> str | None:
        return f"torchvision:VGG16_Weights.{IMAGENET_WEIGHTS}" if self._uses_hub_weights() else None

    def default_preprocessing(self) -> Preprocessing:
        """``VGG16_Weights.IMAGENET1K_V1.transforms()``: resize 256 bilinear, crop 224, ImageNet."""
        return Preprocessing(resize=256, crop=224, mean=IMAGENET_MEAN, std=IMAGENET_STD)

    def _build_model(self) -> torch.nn.Module:
        from torchvision.models import vgg16

        imagenet = self._imagenet_state_dict() if self._uses_hub_weights() else None  # fail before building
        network = vgg16(weights=None)
        if self.num_identities is not None:
            last = network.classifier[6]
            network.classifier[6] = torch.nn.Linear(last.in_features, self.num_identities)
        if self.weights_path is not None:
            load_weights(network, self.read_file(self.weights_path))
        elif imagenet is not None:
            network.load_state_dict(imagenet)
        return network

    def _imagenet_state_dict(self) -> dict[str, torch.Tensor]:
        """torchvision's ImageNet weights, from the torch hub cache or downloaded."""
        weights = self._weights()
        with torch_hub_download("torchvision VGG16 ImageNet weights", weights.url):
            return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
