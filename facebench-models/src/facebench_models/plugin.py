"""Registers the models of this package; importing it imports no model library."""

from __future__ import annotations

from collections.abc import Callable

import facebench
from facebench import ModelSpec

MODELS = (
    ModelSpec(
        "vgg16",
        "facebench_models.vgg16:Vgg16Model",
        "VGG16 (torchvision); ImageNet weights or a face-trained checkpoint",
    ),
    ModelSpec("dinov2", "facebench_models.dinov2:DinoModel", "DINOv2 vision transformer (transformers)"),
    ModelSpec("clip", "facebench_models.clip:CLIPModel", "CLIP image tower (open_clip)"),
)


@facebench.hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for spec in MODELS:
        register(spec)
