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
    ModelSpec(
        "torchvision",
        "facebench_models.torchvision_family:TorchvisionModel",
        "any torchvision classifier: arch, weights (enum name) or pretrained=false, "
        "num_identities, weights_path",
    ),
    ModelSpec(
        "timm",
        "facebench_models.timm_family:TimmModel",
        "any timm network: arch (optionally .tag), pretrained, num_identities, weights_path",
    ),
    ModelSpec(
        "huggingface",
        "facebench_models.huggingface:HuggingFaceModel",
        "any transformers vision backbone (ViT, DINO, BEiT, ConvNeXt, Swin, CLIP/SigLIP towers): "
        "version, pretrained",
    ),
    ModelSpec(
        "iresnet",
        "facebench_models.iresnet:IResNetModel",
        "ArcFace/insightface IResNet face backbone: arch (iresnet18..200), weights_path "
        "(backbone.pth), pretrained",
    ),
    ModelSpec(
        "facenet",
        "facebench_models.facenet:FaceNetModel",
        "FaceNet Inception-ResNet-v1 face backbone (facenet-pytorch layout): weights_path, pretrained",
    ),
)


@facebench.hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    for spec in MODELS:
        register(spec)
