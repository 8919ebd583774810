"""``timm``: any network of pytorch-image-models (``timm.list_models()``).

- ``arch``: a timm name, with or without a weights tag (``resnet50``, ``resnet50.a1_in1k``,
  ``vit_base_patch16_224.augreg_in21k``, ``convnext_tiny``).
- ``pretrained``: timm's weights for that name (from the Hugging Face hub cache), or ``false``
  for random weights under ``seed``; ``weights_path`` (+ ``num_identities``) for a local or
  face-trained checkpoint.
- Preprocessing: timm's pretrained data config (``timm.data.resolve_data_config``): input size,
  interpolation, ``crop_pct`` (resize to ``size / crop_pct``, then centre crop) and mean/std.
- Layers: ``named_modules()`` names (``layer4``, ``global_pool``, ``fc`` for ResNets; ``blocks.N``,
  ``norm``, ``head`` for ViTs); the final output is the classifier's input
  (:mod:`facebench_models.classifier_family`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.errors import UnknownNameError, WeightsError
from facebench.preprocessing import Preprocessing
from facebench_models.classifier_family import ClassifierFamily
from facebench_models.downloads import (
    cached_hf_file,
    download_errors,
    ensure_downloadable,
    hf_endpoint,
)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class TimmModel(ClassifierFamily):
    """A timm network; ``resnet50`` with timm's default pretrained weights by default.

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    family: ClassVar[str] = "timm"

    def __init__(
        self,
        name: str | None = None,
        arch: str = "resnet50",
        pretrained: bool = True,
        num_identities: int | None = None,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        """Options of the family (and BaseModel's).

        - ``arch``: a timm model name, with or without a weights tag (see ``--available``).
        - ``pretrained``: timm's weights for ``arch`` (true) or random weights under ``seed`` (false).
        - ``num_identities``: the classifier size of a face-trained checkpoint given by ``weights_path``.
        - ``weights_path``: a local state dict, .safetensors or training checkpoint (margin head set aside).
        """
        super().__init__(
            name=name,
            arch=arch,
            pretrained=pretrained,
            num_identities=num_identities,
            weights_path=weights_path,
            **options,
        )
        self.check_arch(self.available_architectures())

    def check_arch(self, known: list[str]) -> None:
        """Like the family's, on the name without its weights tag (``resnet50`` of ``resnet50.a1_in1k``)."""
        base, _, tag = self.arch.partition(".")
        if base in known and tag:
            self._pretrained_cfg()  # an unknown tag fails here
            return
        super().check_arch(known)

    @classmethod
    def available_architectures(cls) -> list[str]:
        import timm

        return list(timm.list_models())

    # ----------------------------------------------------------------- weights
    def _pretrained_cfg(self) -> Any:
        """timm's pretrained config of ``arch`` (its default tag when none is given)."""
        from timm.models import get_pretrained_cfg

        try:
            cfg = get_pretrained_cfg(self.arch)
        except RuntimeError:  # an unknown tag
            cfg = None
        if cfg is None and "." in self.arch:
            from timm import list_pretrained

            base = self.arch.partition(".")[0]
            tags = list_pretrained(f"{base}.*")
            raise UnknownNameError(
                f"model {self.name!r}: timm has no weights {self.arch!r}; "
                f"tags for {base!r}: {', '.join(tags) or 'none'}"
            )
        return cfg

    def _hub_tag(self) -> str:
        """``arch.tag`` of the pretrained weights (timm's default tag when ``arch`` has none)."""
        cfg = self._pretrained_cfg()
        return f"{cfg.architecture}.{cfg.tag}" if cfg is not None and cfg.tag else self.arch

    def hub_weights_id(self) -> str | None:
        return f"timm:{self._hub_tag()}" if self._uses_hub_weights() else None

    # ----------------------------------------------------------------- preprocessing
    def default_preprocessing(self) -> Preprocessing:
        """timm's eval transform of the pretrained data config, as a :class:`Preprocessing`."""
        from timm.data import resolve_data_config

        cfg = self._pretrained_cfg()
        config = resolve_data_config({}, pretrained_cfg=cfg.to_dict() if cfg is not None else {})
        return preprocessing_of(config)

    # ----------------------------------------------------------------- building
    def _create(self, num_classes: int | None) -> torch.nn.Module:
        import timm

        kwargs = {} if num_classes is None else {"num_classes": num_classes}
        if not self._uses_hub_weights():
            return timm.create_model(self.arch, pretrained=False, **kwargs)
        cfg = self._pretrained_cfg()
        if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
            raise WeightsError(
                f"model {self.name!r}: timm publishes no pretrained weights for {self.arch!r}; "
                f"pass weights_path=<a local checkpoint>, or pretrained=false for random weights"
            )
        what = f"timm weights {self._hub_tag()!r}"
        instead = (
            "Pass weights_path=<a local checkpoint (.pth/.safetensors) of this architecture>, "
            "or pretrained=false for random weights."
        )
        if cfg.hf_hub_id:
            repo = cfg.hf_hub_id.split("@")[0]
            cached = cached_hf_file(repo, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else WEIGHT_FILES)
            if cached is None:
                ensure_downloadable(what, hf_endpoint(), instead)
        elif cfg.url:
            ensure_downloadable(what, cfg.url, instead)
        with download_errors(what, instead):
            return timm.create_model(self.arch, pretrained=True, **kwargs)

    def prefix_tokens(self) -> int:
        """timm's ``num_prefix_tokens`` (class, distillation and register tokens; 1 if not given)."""
        return int(getattr(self.model, "num_prefix_tokens", 1))

    def network_channels_last(self) -> bool:
        """timm's ``output_fmt`` is ``NHWC`` (Swin, SwinV2, ...)."""
        return getattr(self.model, "output_fmt", "NCHW") == "NHWC"

    def declared_layouts(self) -> dict[str, bool]:
        """The ``feature_info`` stages, in the network's ``output_fmt``; ConvNeXt blocks and
        stages, which permute their channels-last middle back to ``(B, C, H, W)``."""
        stages = {
            info["module"]: self.network_channels_last() for info in getattr(self.model, "feature_info", [])
        }
        return stages | {"ConvNeXtBlock": False, "ConvNeXtStage": False}

    def _classifier(self, network: torch.nn.Module) -> torch.nn.Module | None:
        """timm's classifier (``get_classifier()``), unless the network has none."""
        get_classifier = getattr(network, "get_classifier", None)
        classifier = get_classifier() if get_classifier is not None else None
        return classifier if isinstance(classifier, torch.nn.Linear) else None


def preprocessing_of(config: dict[str, Any]) -> Preprocessing:
    """timm's eval transform (``transforms_factory.transforms_imagenet_eval``) of a data config.

    ``center`` crop mode: resize the shorter side to ``floor(size / crop_pct)``, centre crop;
    ``squash``: resize both sides to ``floor(size / crop_pct)``, centre crop.
    """
    _, height, width = config["input_size"]
    crop_pct = float(config.get("crop_pct") or 1.0)
    scaled = (math.floor(height / crop_pct), math.floor(width / crop_pct))
    if config.get("crop_mode") == "squash":
        resize: int | tuple[int, int] = scaled
    else:
        resize = scaled[0] if height == width else scaled
    interpolation = str(config.get("interpolation") or "bilinear")
    return Preprocessing(
        resize=resize,
        crop=height if height == width else (height, width),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        interpolation="bicubic" if interpolation == "random" else interpolation,
    )
