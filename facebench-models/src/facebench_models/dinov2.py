"""DINOv2 from transformers (``Dinov2Model``): hub weights, a local folder, or random weights.

- ``version``: a Hugging Face id (default ``facebook/dinov2-base``; also ``-small``, ``-large``,
  ``-giant``) or a local folder saved with ``save_pretrained`` (``config.json`` + weights).
- Default layer: ``layernorm`` (the final normalised tokens) with ``cls`` reduction, i.e. the
  class-token embedding DINOv2 reports (``pooler_output``). Every transformer block
  ``encoder.layer.N`` is extractable (``cls`` by default; ``reduction=mean`` averages the tokens).
- Preprocessing: as DINOv2's image processor — resize the short side to 256 (bicubic), centre
  crop 224, ImageNet mean/std. ``image_size`` changes the crop (the resize scales with it);
  the options ``resize``, ``crop``, ``mean``, ``std``, ``grayscale``, ``interpolation`` change
  any part of it.
- ``pretrained=false``: random weights for the same architecture (reproducible by ``seed``); the
  official sizes need no download for this. ``config`` (a ``Dinov2Config`` or a dict of its
  fields) builds a network of any shape with random weights; ``weights_path`` loads a local
  state dict into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.errors import ConfigError
from facebench.model import BaseModel, load_weights
from facebench.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from facebench_models.downloads import (
    cached_hf_file,
    download_errors,
    ensure_downloadable,
    hf_endpoint,
    offline_mode,
)
from facebench_models.huggingface import folder_files, folder_fingerprint, prefix_token_count

DEFAULT_VERSION = "facebook/dinov2-base"
RESIZE_TO_CROP = 256 / 224
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# The official architectures, so random-weight controls need no download.
OFFICIAL_CONFIGS: dict[str, dict[str, Any]] = {
    "facebook/dinov2-small": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6},
    "facebook/dinov2-base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    "facebook/dinov2-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "facebook/dinov2-giant": {
        "hidden_size": 1536,
        "num_hidden_layers": 40,
        "num_attention_heads": 24,
        "use_swiglu_ffn": True,
    },
}
OFFICIAL_SHARED = {"image_size": 518, "patch_size": 14, "mlp_ratio": 4, "layerscale_value": 1.0}


class DinoModel(BaseModel):
    """DINOv2 vision transformer; ``facebook/dinov2-base`` by default.

    - ``version``: a Hugging Face id (facebook/dinov2-small, -base, -large, -giant) or a local folder.
    - ``pretrained``: the version's weights (true) or random weights (false).
    - ``config``: a Dinov2Config or a table of its fields, for a network of any shape (random weights).
    - ``image_size``: the centre-crop size; the resize scales with it (256/224 of it).

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    default_layers: ClassVar[tuple[str, ...]] = ("layernorm",)
    default_reduction: ClassVar[str] = "cls"

    def __init__(
        self,
        name: str | None = None,
        version: str = DEFAULT_VERSION,
        pretrained: bool = True,
        config: Any = None,
        image_size: int = 224,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            name=name,
            weights_path=weights_path,
            **options,
        )
        if config is not None and pretrained and weights_path is None:
            raise ConfigError(
                f"model {self.name!r}: config builds a network with random weights; add pretrained=false "
                f"(or weights_path=<a state dict for it>)"
            )
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
            raise ConfigError(f"model {self.name!r}: image_size must be a positive integer")
        self.version = str(version)
        self.pretrained = bool(pretrained)
        self.config = config
        self.image_size = image_size
        local = Path(self.version).expanduser()
        self.local_dir: Path | None = local if local.is_dir() else None

    # ----------------------------------------------------------------- identity
    def _uses_hub_weights(self) -> bool:
        return (
            self.pretrained and self.weights_path is None and self.config is None and self.local_dir is None
        )

    def hub_weights_id(self) -> str | None:
        return f"huggingface:{self.version}" if self._uses_hub_weights() else None

    def data_files(self) -> list[Path]:
        """``weights_path``, and a local folder's ``config.json`` and weights, which building reads."""
        local = folder_files(self.local_dir, WEIGHT_FILES) if self.local_dir is not None else []
        return [*super().data_files(), *local]

    def weights_fingerprint(self) -> str:
        if (
            self.local_dir is not None
            and self.pretrained
            and self.weights_path is None
            and self.config is None
        ):
            return folder_fingerprint(self.local_dir, WEIGHT_FILES)
        return super().weights_fingerprint()

    # ----------------------------------------------------------------- preprocessing
    def default_preprocessing(self) -> Preprocessing:
        """DINOv2's image processor: resize 256/224 of ``image_size`` (bicubic), crop ``image_size``."""
        return Preprocessing(
            resize=round(self.image_size * RESIZE_TO_CROP),
            crop=self.image_size,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            interpolation="bicubic",
        )

    def prefix_tokens(self) -> int:
        """The class token, before the patch tokens (``Dinov2Model`` has no register tokens)."""
        return prefix_token_count(self.model)

    # ----------------------------------------------------------------- building
    def _build_model(self) -> torch.nn.Module:
        from transformers import Dinov2Model

        if self._uses_hub_weights():
            return self._from_hub()
        if (
            self.local_dir is not None
            and self.pretrained
            and self.config is None
            and self.weights_path is None
        ):
            with download_errors(f"DINOv2 weights in folder {str(self.local_dir)!r}", _INSTEAD):
                return Dinov2Model.from_pretrained(self.local_dir, local_files_only=True)
        network = Dinov2Model(self._config())
        if self.weights_path is not None:
            load_weights(network, self.read_file(self.weights_path))
        return network

    def _config(self) -> Any:
        """The architecture: ``config``, the local folder's, an official one, or the hub's."""
        from transformers import Dinov2Config

        if isinstance(self.config, Dinov2Config):
            return self.config
        if isinstance(self.config, Mapping):
            return Dinov2Config(**self.config)
        if self.config is not None:
            raise ConfigError(f"model {self.name!r}: config must be a Dinov2Config or a dict of its fields")
        if self.local_dir is not None:
            with download_errors(f"DINOv2 config in folder {str(self.local_dir)!r}", _INSTEAD):
                return Dinov2Config.from_pretrained(self.local_dir, local_files_only=True)
        cached = cached_hf_file(self.version, ("config.json",))
        if cached is not None:
            return Dinov2Config.from_json_file(cached)
        if self.version in OFFICIAL_CONFIGS:
            return Dinov2Config(**OFFICIAL_SHARED, **OFFICIAL_CONFIGS[self.version])
        what = f"the DINOv2 config of {self.version!r}"
        ensure_downloadable(what, hf_endpoint(), _INSTEAD)
        with download_errors(what, _INSTEAD):
            return Dinov2Config.from_pretrained(self.version)

    def _from_hub(self) -> torch.nn.Module:
        from transformers import Dinov2Model

        what = f"DINOv2 weights {self.version!r} (Hugging Face)"
        cached = cached_hf_file(self.version, ("config.json",)) and cached_hf_file(self.version, WEIGHT_FILES)
        if not cached:
            ensure_downloadable(what, hf_endpoint(), _INSTEAD)
        with download_errors(what, _INSTEAD):
            return Dinov2Model.from_pretrained(self.version, local_files_only=bool(cached) or offline_mode())


_INSTEAD = (
    "Pass version=<a local folder saved with Dinov2Model.save_pretrained (config.json + model.safetensors)>, "
    "or pretrained=false for random weights."
)
