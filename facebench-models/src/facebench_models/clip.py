"""CLIP's image tower from open_clip: OpenAI or open_clip weights, a local checkpoint, or random.

- ``version``: an OpenAI name (``ViT-B/32``, ``ViT-L/14@336px``, ``RN50``) or an open_clip
  architecture (``ViT-B-32``; ``open_clip.list_models()``). ``pretrained``: an open_clip tag
  (``laion2b_s34b_b79k``; ``open_clip.list_pretrained()``), ``true`` for the OpenAI weights
  (the only choice for OpenAI names; other architectures need a tag), or ``false`` for random
  weights (reproducible by ``seed``) with the same architecture and preprocessing.
- Only the image tower is kept, under the name ``visual`` as in the full model: layers are
  ``visual.transformer.resblocks.N`` (ViTs), ``visual.ln_post``, ``visual.layerN`` (ResNets), ...
- Default layer: the image embedding (the tower's final, projected output, ``output``).
  Default reduction ``cls`` (the class token) for the ViT blocks; the final output is already
  one vector per image and is kept whole. ResNet layers need ``reduction=mean``.
- Preprocessing: that of the weights' tag (OpenAI: resize 224 bicubic, centre crop, CLIP mean/std;
  tags with ``resize_mode`` ``squash`` resize to the exact square, no crop), as open_clip's
  ``image_transform_v2`` gives it; the options ``resize``, ``crop``, ``mean``, ``std``,
  ``grayscale``, ``interpolation`` change any part of it.
- ``weights_path``: a local open_clip checkpoint of the whole CLIP model (``.pt``, ``.bin`` or
  ``.safetensors``; a state dict or ``{'state_dict': ...}``, ``module.`` prefixes stripped,
  loaded with ``weights_only=True``) for ``version``'s architecture.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from facebench.errors import ConfigError, UnknownNameError, WeightsError
from facebench.model import FINAL_OUTPUT, BaseModel
from facebench.preprocessing import Preprocessing
from facebench.registry import unknown_name_message
from facebench_models.downloads import cached_hf_file, download_errors, ensure_downloadable, hf_endpoint

OPENAI_TAG = "openai"
PREPROCESS_FIELDS = ("mean", "std", "interpolation", "resize_mode")


@dataclass(frozen=True)
class ClipSpec:
    """What ``version`` + ``pretrained`` resolve to."""

    arch: str
    tag: str | None  # the weights' tag; also sets the architecture details and preprocessing
    tag_cfg: dict[str, Any]
    model_cfg: dict[str, Any]

    @property
    def quick_gelu(self) -> bool:
        return bool(self.tag_cfg.get("quick_gelu", False))


class ImageTower(torch.nn.Module):
    """A CLIP model's image tower alone, named ``visual`` as in the full model."""

    def __init__(self, visual: torch.nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, images: Tensor) -> Tensor:
        return self.visual(images)


class CLIPModel(BaseModel):
    """The image tower of an open_clip CLIP model; OpenAI ViT-B/32 by default.

    - ``version``: an OpenAI name (ViT-B/32, RN50) or an open_clip architecture (ViT-B-32).
    - ``pretrained``: true (OpenAI weights), false (random weights) or an open_clip tag.

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    default_layers: ClassVar[tuple[str, ...]] = ()
    default_reduction: ClassVar[str] = "cls"

    def __init__(
        self,
        name: str | None = None,
        version: str = "ViT-B/32",
        pretrained: bool | str = True,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            name=name,
            weights_path=weights_path,
            **options,
        )
        if not isinstance(pretrained, bool | str) or pretrained == "":
            raise ConfigError(f"model {self.name!r}: pretrained must be true, false or an open_clip tag")
        self.version = str(version)
        self.pretrained = pretrained

    # ----------------------------------------------------------------- resolving
    @functools.cached_property
    def spec(self) -> ClipSpec:
        """The open_clip architecture and weights tag ``version`` and ``pretrained`` name."""
        return resolve_version(self.name, self.version, self.pretrained, self.weights_path is not None)

    def _uses_hub_weights(self) -> bool:
        return self.pretrained is not False and self.weights_path is None

    def hub_weights_id(self) -> str | None:
        return f"open_clip:{self.spec.arch}:{self.spec.tag}" if self._uses_hub_weights() else None

    def reduction_for(self, layer: str) -> str:
        """As configured, except that the final output (one vector per image) is kept whole under ``cls``."""
        reduction = super().reduction_for(layer)
        return "flatten" if layer == FINAL_OUTPUT and reduction == "cls" else reduction

    def prefix_tokens(self) -> int:
        """The class token of a ViT tower (open_clip's ``class_embedding``), or a timm tower's
        ``num_prefix_tokens``; none otherwise."""
        visual = self.model.visual
        if hasattr(visual, "class_embedding"):
            return 1
        return int(getattr(getattr(visual, "trunk", None), "num_prefix_tokens", 0))

    # ----------------------------------------------------------------- preprocessing
    def default_preprocessing(self) -> Preprocessing:
        """open_clip's inference transform for the weights' tag (``image_transform_v2``)."""
        from open_clip.transform import PreprocessCfg

        cfg = PreprocessCfg(
            size=self.spec.model_cfg.get("vision_cfg", {}).get("image_size", PreprocessCfg.size),
            **{key: self.spec.tag_cfg[key] for key in PREPROCESS_FIELDS if key in self.spec.tag_cfg},
        )
        size = cfg.size if isinstance(cfg.size, int) else tuple(cfg.size)
        if cfg.resize_mode == "squash":
            square = (size, size) if isinstance(size, int) else size
            return Preprocessing(
                resize=square, crop=None, mean=cfg.mean, std=cfg.std, interpolation=cfg.interpolation
            )
        if cfg.resize_mode != "shortest" or (not isinstance(size, int) and size[0] != size[1]):
            raise ConfigError(
                f"model {self.name!r}: open_clip preprocessing with resize_mode {cfg.resize_mode!r} "
                f"and size {size} has no facebench equivalent; give preprocess_function=<the transform>"
            )
        side = size if isinstance(size, int) else size[0]
        return Preprocessing(
            resize=side, crop=side, mean=cfg.mean, std=cfg.std, interpolation=cfg.interpolation
        )

    # ----------------------------------------------------------------- building
    def _build_model(self) -> torch.nn.Module:
        import open_clip

        spec = self.spec
        checkpoint = fetch_weights(spec) if self._uses_hub_weights() else None  # fail before building
        with quiet_root_logger():  # open_clip logs a warning on the root logger when it loads no weights
            clip = open_clip.create_model(spec.arch, pretrained=None, force_quick_gelu=spec.quick_gelu)
        source = checkpoint or (self.read_file(self.weights_path) if self.weights_path is not None else None)
        if source is not None:
            try:
                open_clip.load_checkpoint(clip, str(source), strict=True, weights_only=True)
            except Exception as exc:
                detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                raise WeightsError(
                    f"weights file {str(source)!r} could not be loaded into open_clip {spec.arch!r} "
                    f"({detail}); check that version (and pretrained) name the checkpoint's architecture, "
                    f"and that it holds only tensors (a state dict or {{'state_dict': ...}})"
                ) from None
        return ImageTower(clip.visual)


@contextmanager
def quiet_root_logger() -> Iterator[None]:
    """Hide root-logger warnings below ERROR for the duration."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


def openai_to_arch(version: str) -> str:
    """``ViT-B/32`` -> ``ViT-B-32``, ``ViT-L/14@336px`` -> ``ViT-L-14-336``; other names unchanged."""
    return version.replace("@336px", "-336").replace("/", "-")


def resolve_version(
    model_name: str, version: str, pretrained: bool | str, has_weights_file: bool
) -> ClipSpec:
    """Check ``version`` and ``pretrained`` against open_clip's architectures and tags."""
    import open_clip

    arch = openai_to_arch(version)
    model_cfg = open_clip.get_model_config(arch)
    if model_cfg is None:
        message = unknown_name_message("open_clip architecture", arch, open_clip.list_models())
        raise UnknownNameError(f"model {model_name!r}: {message}")
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if isinstance(pretrained, str):
        if pretrained not in tags:
            known = ", ".join(tags) if tags else "none"
            raise ConfigError(
                f"model {model_name!r}: open_clip has no weights {pretrained!r} for {arch!r}. Tags: {known}"
            )
        tag: str | None = pretrained
    else:
        tag = OPENAI_TAG if OPENAI_TAG in tags else None
        if pretrained and tag is None and not has_weights_file:
            raise ConfigError(
                f"model {model_name!r}: {arch!r} has no OpenAI weights; name a tag, e.g. "
                f"pretrained={tags[0] if tags else '<tag>'} (tags: {', '.join(tags) or 'none'}), or give "
                f"weights_path=<checkpoint>, or pretrained=false for random weights"
            )
    tag_cfg = dict(open_clip.get_pretrained_cfg(arch, tag)) if tag else {}
    return ClipSpec(arch=arch, tag=tag, tag_cfg=tag_cfg, model_cfg=model_cfg)


def fetch_weights(spec: ClipSpec) -> str:
    """The local path of ``spec``'s pretrained weights: from the cache, or downloaded."""
    import open_clip

    what = f"open_clip weights {spec.arch!r} ({spec.tag})"
    instead = (
        "Download them where there is internet (open_clip.create_model(arch, pretrained=tag) caches "
        "them), then pass weights_path=<that checkpoint file>; or pretrained=false for random weights."
    )
    cached = cached_weights(spec.tag_cfg)
    if cached is not None:
        return cached
    url = hf_endpoint() if spec.tag_cfg.get("hf_hub") else spec.tag_cfg.get("url", hf_endpoint())
    ensure_downloadable(what, url, instead)
    with download_errors(what, instead):
        return open_clip.download_pretrained(spec.tag_cfg)


def cached_weights(tag_cfg: Mapping[str, Any]) -> str | None:
    """Where open_clip keeps these weights once downloaded, if they are there (no network)."""
    if tag_cfg.get("file"):
        return str(tag_cfg["file"])
    if tag_cfg.get("hf_hub"):
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo_id, filename = os.path.split(tag_cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        stem, suffix = os.path.splitext(filename)
        safe = HF_SAFE_WEIGHTS_NAME if filename == HF_WEIGHTS_NAME else f"{stem}.safetensors"
        candidates = (safe, filename) if suffix in (".bin", ".pth") else (filename,)
        found = cached_hf_file(repo_id, candidates)
        return str(found) if found else None
    if tag_cfg.get("url"):
        path = Path("~/.cache/clip").expanduser() / os.path.basename(tag_cfg["url"])
        return str(path) if path.is_file() else None
    return None
