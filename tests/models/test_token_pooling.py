"""Token pooling (cls, mean, mean-patches, cls+mean) against hand-written reductions of the
same layer outputs, on tiny DINOv2, timm and open_clip ViTs with random weights."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import timm
import torch
from click.testing import CliRunner
from transformers import (
    Dinov2Config,
    Dinov2ForImageClassification,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
)

from facebench.cli import main
from facebench.errors import ConfigError
from facebench.reductions import reduce_output
from facebench_models.clip import CLIPModel
from facebench_models.dinov2 import DinoModel
from facebench_models.huggingface import HuggingFaceModel
from facebench_models.timm_family import TimmModel

TINY_DINO = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "mlp_ratio": 2,
    "image_size": 32,
    "patch_size": 8,
}
TINY_CLIP_CONFIG = Path(__file__).parents[1] / "fixtures" / "models" / "facebench-tiny-vit.json"
POOLINGS = ("cls", "mean", "mean-patches", "cls+mean")


def by_hand(tokens: torch.Tensor, pooling: str, prefix: int) -> torch.Tensor:
    """The reductions written out on a (B, T, D) output with ``prefix`` non-patch tokens."""
    cls, every, patches = tokens[:, 0], tokens.mean(dim=1), tokens[:, prefix:].mean(dim=1)
    return {"cls": cls, "mean": every, "mean-patches": patches, "cls+mean": torch.cat([cls, patches], 1)}[
        pooling
    ]


def captured(network: torch.nn.Module, layer: str, run) -> torch.Tensor:
    """The raw output of ``layer`` in one call of ``run()``."""
    outputs: list[torch.Tensor] = []
    hook = network.get_submodule(layer).register_forward_hook(
        lambda _m, _i, out: outputs.append((out[0] if isinstance(out, tuple) else out).detach().clone())
    )
    try:
        with torch.inference_mode():
            run()
    finally:
        hook.remove()
    return outputs[0]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("pooling", POOLINGS)
def test_dinov2_pooling_equals_the_hand_written_reduction(images: torch.Tensor, pooling: str) -> None:
    layers = ["encoder.layer.0", "layernorm"]
    model = DinoModel(
        config=TINY_DINO,
        pretrained=False,
        image_size=32,
        device="cpu",
        extract_layers=layers,
        reduction=pooling,
    )
    out = model.get_output(images)
    assert model.prefix_tokens() == 1
    for layer in layers:
        tokens = captured(model.model, layer, lambda: model.model(pixel_values=images))
        assert tokens.shape[1] == 1 + (32 // 8) ** 2
        torch.testing.assert_close(out[layer], by_hand(tokens, pooling, 1), rtol=0, atol=0)


def test_dinov2_cls_plus_mean_is_the_input_of_its_linear_probe(images: torch.Tensor) -> None:
    model = DinoModel(config=TINY_DINO, pretrained=False, image_size=32, device="cpu", reduction="cls+mean")
    probe = Dinov2ForImageClassification(Dinov2Config(**TINY_DINO, num_labels=3)).eval()
    probe.dinov2.load_state_dict(model.model.state_dict())
    inputs: list[torch.Tensor] = []
    hook = probe.classifier.register_forward_pre_hook(
        lambda _m, args: inputs.append(args[0].detach().clone())
    )
    with torch.inference_mode():
        probe(pixel_values=images)
    hook.remove()
    torch.testing.assert_close(model.get_output(images)["layernorm"], inputs[0])


@pytest.mark.parametrize("pooling", POOLINGS)
def test_register_tokens_are_left_out_of_the_patch_mean(
    tmp_path: Path, images: torch.Tensor, pooling
) -> None:
    config = Dinov2WithRegistersConfig(**TINY_DINO, num_register_tokens=3)
    torch.manual_seed(0)
    Dinov2WithRegistersModel(config).save_pretrained(tmp_path)
    model = HuggingFaceModel(
        version=str(tmp_path), device="cpu", extract_layers=["layernorm"], reduction=pooling
    )
    out = model.get_output(images)["layernorm"]
    tokens = captured(model.model, "layernorm", lambda: model.model(pixel_values=images))
    assert model.prefix_tokens() == 4 and tokens.shape[1] == 4 + 16
    torch.testing.assert_close(out, by_hand(tokens, pooling, 4), rtol=0, atol=0)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_timm_vit_pooling_equals_the_hand_written_reduction(pooling: str) -> None:
    images = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    model = TimmModel(
        arch="test_vit", pretrained=False, device="cpu", extract_layers=["blocks.1"], reduction=pooling
    )
    out = model.get_output(images)["blocks.1"]
    tokens = captured(model.model, "blocks.1", lambda: model.model(images))
    assert model.prefix_tokens() == model.model.num_prefix_tokens == 1
    torch.testing.assert_close(out, by_hand(tokens, pooling, 1), rtol=0, atol=0)


def test_timm_mean_patches_is_timms_own_average_pool() -> None:
    images = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(2))
    model = TimmModel(
        arch="test_vit", pretrained=False, device="cpu", extract_layers=["norm"], reduction="mean-patches"
    )
    network = timm.create_model("test_vit", pretrained=False, global_pool="avg", fc_norm=False).eval()
    network.load_state_dict(model.model.state_dict())
    with torch.inference_mode():
        pooled = network.forward_head(network.forward_features(images), pre_logits=True)
    torch.testing.assert_close(model.get_output(images)["norm"], pooled)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_open_clip_pooling_equals_the_hand_written_reduction(images: torch.Tensor, pooling: str) -> None:
    open_clip.add_model_config(TINY_CLIP_CONFIG)
    layer = "visual.transformer.resblocks.1"
    model = CLIPModel(
        version="facebench-tiny-vit",
        pretrained=False,
        device="cpu",
        extract_layers=[layer],
        reduction=pooling,
    )
    out = model.get_output(images)[layer]
    tokens = captured(model.model, layer, lambda: model.model(images))
    assert model.prefix_tokens() == 1
    torch.testing.assert_close(out, by_hand(tokens, pooling, 1), rtol=0, atol=0)


def test_token_poolings_refuse_outputs_without_tokens() -> None:
    feature_map = torch.ones(2, 4, 3, 3)
    for pooling in ("cls", "mean-patches", "cls+mean"):
        with pytest.raises(ConfigError, match=r"\(batch, tokens, dim\).*'mean' or 'flatten'"):
            reduce_output(feature_map, pooling, "features.3")
    with pytest.raises(ConfigError, match="has none"):
        reduce_output(torch.ones(2, 5, 4), "cls", "stage.0", prefix_tokens=0)
    with pytest.raises(ConfigError, match="no patch tokens"):
        reduce_output(torch.ones(2, 1, 4), "mean-patches", "norm", prefix_tokens=1)


def test_describe_states_the_default_pooling_and_the_choices() -> None:
    result = CliRunner().invoke(main, ["describe", "dinov2"])
    assert result.exit_code == 0, result.output
    assert "Default reduction: cls (the class token, the first token)" in result.output
    for pooling in POOLINGS:
        assert pooling in result.output
