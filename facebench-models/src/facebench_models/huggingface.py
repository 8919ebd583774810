"""``huggingface``: any vision backbone ``transformers.AutoModel`` loads (ViT, DINO, DINOv2,
BEiT, ConvNeXt, Swin, ...; the vision tower of CLIP, SigLIP and other image-text models).

- ``version``: a Hugging Face hub id (``google/vit-base-patch16-224-in21k``,
  ``facebook/dino-vitb16``, ``openai/clip-vit-base-patch32``) or a local folder saved with
  ``save_pretrained`` (``config.json``, the weights, ``preprocessor_config.json``).
- ``pretrained``: the version's weights (true), or random weights of its architecture under
  ``seed`` (false; needs only ``config.json``).
- Preprocessing: from the version's ``AutoImageProcessor`` (resize, centre crop, resampling,
  mean/std; ConvNeXt's ``crop_pct`` too); without a processor file, ImageNet's at the config's
  ``image_size``.
- Layers: ``named_modules()`` names, as the installed transformers names them (``facebench
  layers`` lists them): ``embeddings``, the blocks (``layers.N`` in transformers 5 ViTs,
  ``encoder.layer.N`` in older releases and DINOv2), ``layernorm``, ``encoder.stages.N``
  (ConvNeXt); an image-text model's tower is under ``vision_model.``. Default reduction ``cls`` (the class
  token; ``mean`` averages tokens or space and is needed for convolutional stages).
- Final output (``output``, the default layer): the model's pooled image embedding
  (``pooler_output``: DINOv2's and CLIP's normalised class token, ConvNeXt's and Swin's pooled
  features, SigLIP's attention pool), except for models whose pooler is a trained-for-
  classification dense + tanh layer (ViT, DeiT), where it is the final normalised class token.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from facebench.errors import ConfigError
from facebench.model import FINAL_OUTPUT, BaseModel, file_sha256
from facebench.preprocessing import Preprocessing
from facebench_models.downloads import cached_hf_file, download_errors, ensure_downloadable, hf_endpoint
from facebench_models.layouts import SpatialLayout

logger = logging.getLogger("facebench.models")

DEFAULT_VERSION = "google/vit-base-patch16-224-in21k"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
PROCESSOR_FILE = "preprocessor_config.json"
PIL_RESAMPLING = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box"}
CONVNEXT_WARP_SIZE = 384  # ConvNeXt's processor warps to a square from this size on, else crops


class VisionTower(torch.nn.Module):
    """An image-text model's vision tower alone, named ``vision_model`` as in the full model."""

    def __init__(self, vision_model: torch.nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model

    def forward(self, pixel_values: Tensor) -> Any:
        return self.vision_model(pixel_values=pixel_values)


class HuggingFaceModel(SpatialLayout, BaseModel):
    """A transformers vision backbone; ``google/vit-base-patch16-224-in21k`` by default.

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    default_layers: ClassVar[tuple[str, ...]] = ()
    default_reduction: ClassVar[str] = "cls"

    def __init__(
        self,
        name: str | None = None,
        version: str = DEFAULT_VERSION,
        pretrained: bool = True,
        **options: Any,
    ) -> None:
        """Options of the family (and BaseModel's).

        - ``version``: a Hugging Face hub id, or a local folder saved with ``save_pretrained``.
        - ``pretrained``: the version's weights (true) or random weights of its architecture (false).
        """
        super().__init__(name=name, **options)
        self.version = str(version)
        self.pretrained = bool(pretrained)
        local = Path(self.version).expanduser()
        self.local_dir: Path | None = local if local.is_dir() else None
        if self.local_dir is None and (
            self.version.startswith((".", "/", "~")) or self.version.count("/") > 1
        ):
            raise ConfigError(
                f"model {self.name!r}: version {self.version!r} is neither a folder nor a hub id "
                f"(owner/name); check the path"
            )

    @classmethod
    def available_architectures(cls) -> list[str]:
        """The model types ``AutoModel`` knows for images (any hub id or folder of these loads)."""
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_MAPPING_NAMES

        return sorted(MODEL_FOR_IMAGE_MAPPING_NAMES)

    # ----------------------------------------------------------------- identity
    def hub_weights_id(self) -> str | None:
        if self.pretrained and self.local_dir is None:
            return f"huggingface:{self.version}"
        return None

    def data_files(self) -> list[Path]:
        """A local folder's ``config.json`` and weights, which building reads."""
        local = folder_files(self.local_dir, WEIGHT_FILES) if self.local_dir is not None else []
        return [*super().data_files(), *local]

    def weights_fingerprint(self) -> str:
        """A local folder's files by sha256; the hub id; or the config's hash with random weights."""
        if self.local_dir is not None and self.pretrained:
            return folder_fingerprint(self.local_dir, WEIGHT_FILES)
        if not self.pretrained:
            config = hashlib.sha256(self._config().to_json_string(use_diff=False).encode()).hexdigest()
            return f"random:seed={self.seed},config={config[:16]}"
        return super().weights_fingerprint()

    # ----------------------------------------------------------------- loading
    def _source(self) -> str:
        return str(self.local_dir) if self.local_dir is not None else self.version

    def _fetch(self, what: str, files: tuple[str, ...], load: Any) -> Any:
        """``load(source, local_files_only=...)`` from the folder or hub cache, or a fast, clear failure."""
        instead = (
            "Pass version=<a local folder saved with save_pretrained (config.json, the weights, "
            "preprocessor_config.json)>, or pretrained=false for random weights (needs config.json)."
        )
        description = f"{what} of {self.version!r} (Hugging Face)"
        cached = self.local_dir is not None or all(cached_hf_file(self.version, (f,)) for f in files)
        if not cached:
            ensure_downloadable(description, hf_endpoint(), instead)
        with download_errors(description, instead):
            return load(self._source(), local_files_only=cached)

    def _config(self) -> Any:
        from transformers import AutoConfig

        if not hasattr(self, "_cached_config"):
            self._cached_config = self._fetch("the config", ("config.json",), AutoConfig.from_pretrained)
        return self._cached_config

    # ----------------------------------------------------------------- preprocessing
    def default_preprocessing(self) -> Preprocessing:
        """The version's ``AutoImageProcessor`` settings (ImageNet's at ``image_size`` without one)."""
        from transformers import AutoImageProcessor

        has_processor = (
            (self.local_dir / PROCESSOR_FILE).is_file()
            if self.local_dir is not None
            else cached_hf_file(self.version, (PROCESSOR_FILE,)) is not None or self.pretrained
        )
        if not has_processor:
            size = _config_image_size(self._config())
            logger.warning(
                "model %r: %s has no %s; using ImageNet preprocessing at %d px",
                self.name,
                self.version,
                PROCESSOR_FILE,
                size,
            )
            return Preprocessing(resize=size, crop=size)
        processor = self._fetch("the image processor", (PROCESSOR_FILE,), AutoImageProcessor.from_pretrained)
        return preprocessing_of(processor, self.name)

    # ----------------------------------------------------------------- building
    def _build_model(self) -> torch.nn.Module:
        from transformers import AutoModel

        if self.pretrained:
            network = self._fetch("the weights", ("config.json", WEIGHT_FILES[0]), AutoModel.from_pretrained)
        else:
            network = AutoModel.from_config(self._config())
        vision = getattr(network, "vision_model", None)
        if hasattr(network.config, "vision_config") and isinstance(vision, torch.nn.Module):
            return VisionTower(vision)
        return network

    def _forward(self, tensor: Tensor) -> Any:
        """The pooled image embedding (see the module doc), or the layers' outputs via hooks."""
        outputs = self.model(pixel_values=tensor)
        if self.extract_layers:
            return outputs
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is None or _has_dense_pooler(self.model):
            return outputs.last_hidden_state[:, 0]
        return pooled

    def reduction_for(self, layer: str) -> str:
        """As configured, except that the final output (one vector per image) is kept whole under ``cls``."""
        reduction = super().reduction_for(layer)
        return "flatten" if layer == FINAL_OUTPUT and reduction == "cls" else reduction

    def declared_layouts(self) -> dict[str, bool]:
        """ConvNeXt (V2) layers, stages, embeddings and encoder give ``(B, C, H, W)``: a layer
        permutes its channels-last middle (``layernorm``, ``pwconv1``, ``pwconv2``) back."""
        names = ("Layer", "Stage", "Embeddings", "Encoder")
        return {f"{prefix}{name}": False for prefix in ("ConvNext", "ConvNextV2") for name in names}

    def prefix_tokens(self) -> int:
        """The class token (none in SigLIP and Swin), DeiT's distillation token and any register tokens."""
        return prefix_token_count(self.model)


def prefix_token_count(network: torch.nn.Module) -> int:
    """How many non-patch tokens a transformers vision model puts before its patches: a class
    token (``cls_token``; CLIP's ``class_embedding``), a distillation token (DeiT) and register
    tokens (DINOv2 with registers), read off its ``embeddings`` module."""
    embeddings = next((m for n, m in network.named_modules() if n.rpartition(".")[2] == "embeddings"), None)
    if embeddings is None:
        return 0
    count = sum(
        1 for token in ("cls_token", "class_embedding", "distillation_token") if hasattr(embeddings, token)
    )
    registers = getattr(embeddings, "register_tokens", None)
    return count + (int(registers.shape[1]) if isinstance(registers, Tensor) else 0)


def folder_files(folder: Path, weight_files: tuple[str, ...]) -> list[Path]:
    """The files of a ``save_pretrained`` folder that building reads: ``config.json`` and weights."""
    return [path for path in sorted(folder.iterdir()) if path.name in (*weight_files, "config.json")]


def folder_fingerprint(folder: Path, weight_files: tuple[str, ...]) -> str:
    """``sha256:`` over the name and sha256 of a ``save_pretrained`` folder's ``config.json`` and weights."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name in (*weight_files, "config.json"):
            digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return "sha256:" + digest.hexdigest()


def _has_dense_pooler(network: torch.nn.Module) -> bool:
    """True for ViT / DeiT-style poolers (a Linear ``dense`` + tanh trained for classification)."""
    pooler = getattr(network, "pooler", None)
    return isinstance(getattr(pooler, "dense", None), torch.nn.Linear)


def _config_image_size(config: Any) -> int:
    vision = getattr(config, "vision_config", config)
    size = getattr(vision, "image_size", 224)
    return int(size[0] if isinstance(size, list | tuple) else size)


def preprocessing_of(processor: Any, model_name: str) -> Preprocessing:
    """An image processor's resize, centre crop, resampling and mean/std as a :class:`Preprocessing`."""
    size = dict(getattr(processor, "size", None) or {})
    size = {key: value for key, value in size.items() if value is not None}
    crop_size = {k: v for k, v in dict(getattr(processor, "crop_size", None) or {}).items() if v is not None}
    do_crop = bool(getattr(processor, "do_center_crop", False)) and "height" in crop_size
    crop: int | tuple[int, int] | None = (crop_size["height"], crop_size["width"]) if do_crop else None
    resize: int | tuple[int, int] | None
    if not getattr(processor, "do_resize", True):
        resize = None
    elif "height" in size and "width" in size:
        resize = (size["height"], size["width"])
    elif "shortest_edge" in size and getattr(processor, "crop_pct", None) is not None:
        edge = int(size["shortest_edge"])  # ConvNeXt: resize to edge / crop_pct, crop edge
        if edge < CONVNEXT_WARP_SIZE:
            resize, crop = int(edge / processor.crop_pct), edge
        else:
            resize, crop = (edge, edge), None
    elif "shortest_edge" in size:
        resize = int(size["shortest_edge"])
    else:
        raise ConfigError(
            f"model {model_name!r}: the image processor's size {size} is not a fixed size or a shorter "
            f"side; give the options resize and crop"
        )
    if getattr(processor, "do_normalize", True):
        mean, std = processor.image_mean, processor.image_std
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if (
        getattr(processor, "do_rescale", True)
        and abs(getattr(processor, "rescale_factor", 1 / 255) - 1 / 255) > 1e-9
    ):
        raise ConfigError(
            f"model {model_name!r}: the image processor rescales pixels by {processor.rescale_factor}, not "
            f"1/255; give mean and std that reproduce it"
        )
    resample = getattr(processor, "resample", 2)
    return Preprocessing(
        resize=resize,
        crop=crop if not isinstance(crop, tuple) or crop[0] != crop[1] else crop[0],
        mean=mean,
        std=std,
        interpolation=PIL_RESAMPLING.get(int(resample), "bilinear"),
    )
