"""``mean`` on channels-last ``(B, H, W, C)`` layer outputs (Swin stages, ConvNeXt block insides)
averages the spatial axes, as a hand-written reduction of the same outputs does; a layer whose
layout cannot be told is refused, never guessed."""

from __future__ import annotations

import re
from typing import Any

import pytest
import timm
import torch
from torchvision.models import ConvNeXt, SwinTransformer
from torchvision.models.convnext import CNBlockConfig

from facebench.errors import ConfigError
from facebench_models.huggingface import HuggingFaceModel
from facebench_models.layouts import channels_last
from facebench_models.timm_family import TimmModel
from facebench_models.torchvision_family import TorchvisionModel

SIZE = 64


class TinyTimm(TimmModel):
    """A timm family model whose network is built from ``config`` (random weights)."""

    def __init__(self, config: dict[str, Any], **options: Any) -> None:
        self.config = config
        super().__init__(pretrained=False, device="cpu", **options)

    def _create(self, num_classes: int | None) -> torch.nn.Module:
        return timm.create_model(self.arch, pretrained=False, **self.config)


class TinyTorchvision(TorchvisionModel):
    """A torchvision family model whose network is ``build()`` (random weights)."""

    def __init__(self, build: Any, **options: Any) -> None:
        self.build = build
        super().__init__(pretrained=False, device="cpu", **options)

    def _create(self, num_classes: int | None) -> torch.nn.Module:
        torch.manual_seed(0)
        return self.build()


def timm_swin(**options: Any) -> TinyTimm:
    config = dict(img_size=SIZE, window_size=4, embed_dim=24, depths=(1, 1, 2, 1), num_heads=(1, 1, 1, 1))
    return TinyTimm(config, arch="swin_tiny_patch4_window7_224", **options)


def torchvision_swin(**options: Any) -> TinyTorchvision:
    def build() -> torch.nn.Module:
        return SwinTransformer([4, 4], 24, [1, 1, 1, 1], [1, 1, 1, 1], [4, 4])

    return TinyTorchvision(build, arch="swin_t", **options)


def timm_convnext(**options: Any) -> TinyTimm:
    return TinyTimm(
        dict(depths=(1, 1, 1, 1), dims=(24, 40, 56, 72), conv_mlp=False), arch="convnext_atto", **options
    )


def torchvision_convnext(**options: Any) -> TinyTorchvision:
    def build() -> torch.nn.Module:
        return ConvNeXt([CNBlockConfig(24, 40, 1), CNBlockConfig(40, None, 1)])

    return TinyTorchvision(build, arch="convnext_tiny", **options)


@pytest.fixture(scope="module")
def hf_convnext_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny transformers ConvNeXt, saved with save_pretrained (random weights)."""
    from transformers import ConvNextConfig, ConvNextImageProcessor, ConvNextModel

    folder = tmp_path_factory.mktemp("hf-convnext")
    torch.manual_seed(0)
    ConvNextModel(ConvNextConfig(hidden_sizes=[24, 40], depths=[1, 1], num_stages=2)).save_pretrained(folder)
    ConvNextImageProcessor(size={"shortest_edge": SIZE}).save_pretrained(folder)
    return str(folder)


def hf_convnext(folder: str, **options: Any) -> HuggingFaceModel:
    return HuggingFaceModel(version=folder, device="cpu", **options)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def raw_outputs(network: torch.nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every module's first 4-D output with the batch first, from one forward pass."""
    outputs: dict[str, torch.Tensor] = {}

    def keep(name: str, out: Any) -> None:  # returns None: the forward pass is left unchanged
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[0] == len(images):
            outputs.setdefault(name, out.detach().clone())

    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out))
        for name, module in network.named_modules()
        if name
    ]
    try:
        with torch.inference_mode():
            network(images)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def true_layout(shape: torch.Size) -> bool:
    """Channels last, told from the shape: the spatial axes are square and differ from the channels."""
    _, a, b, c = shape
    assert (a == b) != (b == c), f"shape {tuple(shape)} does not tell its layout"
    return a == b


SWINS = {
    "timm": (timm_swin, ["layers.0", "layers.2", "norm"]),
    "torchvision": (torchvision_swin, ["features.1", "features.5", "norm"]),
}


@pytest.mark.parametrize("family", sorted(SWINS))
def test_swin_stage_mean_equals_the_hand_written_spatial_mean(family: str, images: torch.Tensor) -> None:
    build, layers = SWINS[family]
    model = build(extract_layers=layers, reduction="mean")
    raw = raw_outputs(model.model, images)
    got = model.get_output(images)
    for layer in layers:
        batch, height, width, dim = raw[layer].shape
        assert height == width and dim not in (height, 1)  # (B, H, W, C)
        by_hand = raw[layer].mean(dim=(1, 2))
        assert got[layer].shape == (batch, dim)
        torch.testing.assert_close(got[layer], by_hand, rtol=0, atol=1e-6)
        # the (B, C, H, W) reading would have averaged W and C: a different number
        assert not torch.allclose(raw[layer].mean(dim=(2, 3)), by_hand[:, :width], atol=1e-3)


@pytest.mark.parametrize(
    "build", [timm_swin, torchvision_swin, timm_convnext, torchvision_convnext, hf_convnext]
)
def test_every_4d_layer_layout_is_right_or_refused(
    build: Any, images: torch.Tensor, hf_convnext_folder: str
) -> None:
    model = build(hf_convnext_folder) if build is hf_convnext else build()
    raw = raw_outputs(model.model, images)
    told = {
        layer: channels_last(model.model, layer, model.network_channels_last(), model.declared_layouts())
        for layer in raw
    }
    wrong = {
        layer: tuple(out.shape)
        for layer, out in raw.items()
        if told[layer] not in (None, true_layout(out.shape))
    }
    assert not wrong, f"layouts told wrongly: {wrong}"
    stages = [layer for layer in raw if re.fullmatch(r"(layers|features|stages|encoder\.stages)\.\d+", layer)]
    assert stages and all(told[layer] is not None for layer in [*stages, "norm"] if layer in raw)
    assert any(told[layer] is True for layer in raw) and any(told[layer] is False for layer in raw)


def test_convnext_block_insides_mean_and_refusal(images: torch.Tensor) -> None:
    norm, stage = "stages.1.blocks.0.norm", "stages.1"
    model = timm_convnext(extract_layers=[norm, stage], reduction="mean")
    raw = raw_outputs(model.model, images)
    got = model.get_output(images)
    torch.testing.assert_close(got[norm], raw[norm].mean(dim=(1, 2)), rtol=0, atol=1e-6)  # (B, H, W, C)
    torch.testing.assert_close(got[stage], raw[stage].mean(dim=(2, 3)), rtol=0, atol=1e-6)  # (B, C, H, W)
    act = "stages.1.blocks.0.mlp.act"
    with pytest.raises(
        ConfigError, match=r"layer 'stages.1.blocks.0.mlp.act' gives a 4-D output .* reduction='flatten'"
    ):
        timm_convnext(extract_layers=[act], reduction="mean").get_output(images)
    flat = timm_convnext(extract_layers=[act], reduction="flatten").get_output(images)[act]
    assert torch.equal(flat, raw[act].reshape(len(images), -1))


def test_transformers_convnext_layer_insides(images: torch.Tensor, hf_convnext_folder: str) -> None:
    inside, stage = "encoder.stages.1.layers.0.pwconv1", "encoder.stages.1"
    model = hf_convnext(hf_convnext_folder, extract_layers=[inside, stage], reduction="mean")
    raw = raw_outputs(model.model, images)
    got = model.get_output(images)
    torch.testing.assert_close(got[inside], raw[inside].mean(dim=(1, 2)), rtol=0, atol=1e-6)
    torch.testing.assert_close(got[stage], raw[stage].mean(dim=(2, 3)), rtol=0, atol=1e-6)
