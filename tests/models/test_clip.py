"""CLIP image tower (open_clip) with a tiny registered config and random weights at 32 px."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import open_clip
import pytest
import torch
from click.testing import CliRunner

from facebench.cli import main
from facebench.errors import ConfigError, UnknownNameError, WeightsError
from facebench.registry import get_registry
from facebench_models.clip import CLIPModel, openai_to_arch

TINY_CONFIG = Path(__file__).parents[1] / "fixtures" / "models" / "facebench-tiny-vit.json"
TINY = "facebench-tiny-vit"
BLOCKS = ["visual.transformer.resblocks.0", "visual.transformer.resblocks.1"]


@pytest.fixture(scope="module", autouse=True)
def tiny_config() -> None:
    open_clip.add_model_config(TINY_CONFIG)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def tiny(**options) -> CLIPModel:
    return CLIPModel(version=TINY, pretrained=False, device="cpu", **options)


def test_only_the_image_tower_is_kept_and_its_blocks_are_layers() -> None:
    names = tiny().layer_names()
    assert all(name.startswith("visual") for name in names)
    assert [n for n in names if n.count(".") == 3 and ".resblocks." in n] == BLOCKS
    assert "visual.ln_post" in names


def test_blocks_come_from_one_pass_as_class_tokens(images: torch.Tensor) -> None:
    model = tiny(extract_layers=[*BLOCKS, "visual.ln_post"], reduction={"visual.ln_post": "mean"})
    visual = model.model.visual
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        visual.get_submodule(name.removeprefix("visual.")).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, out.clone())
        )
        for name in [*BLOCKS, "visual.ln_post"]
    ]
    calls = []
    hooks.append(visual.conv1.register_forward_hook(lambda *_: calls.append(1)))
    try:
        outputs = model.get_output(images)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(calls) == 1
    assert seen[BLOCKS[0]].shape == (3, 1 + 16, 32)  # batch, class token + 4x4 patches, width
    for block in BLOCKS:
        torch.testing.assert_close(outputs[block], seen[block][:, 0])
    torch.testing.assert_close(outputs["visual.ln_post"], seen["visual.ln_post"].mean(dim=1))


def test_default_is_the_projected_image_embedding(images: torch.Tensor) -> None:
    model = tiny()
    outputs = model.get_output(images)
    assert list(outputs) == ["output"]
    with torch.no_grad():
        expected = model.model.visual(images)
    assert outputs["output"].shape == (3, 16)  # embed_dim of the tiny config
    torch.testing.assert_close(outputs["output"], expected)


def test_random_weights_follow_the_seed(images: torch.Tensor) -> None:
    first = tiny(seed=1).get_output(images)["output"]
    assert torch.equal(first, tiny(seed=1).get_output(images)["output"])
    assert not torch.allclose(first, tiny(seed=2).get_output(images)["output"])
    assert tiny(seed=1).weights_fingerprint() == "random:seed=1"


def test_openai_names_map_to_arch_and_openai_weights() -> None:
    assert openai_to_arch("ViT-B/32") == "ViT-B-32"
    assert openai_to_arch("ViT-L/14@336px") == "ViT-L-14-336"
    model = CLIPModel()
    assert (model.spec.arch, model.spec.tag, model.spec.quick_gelu) == ("ViT-B-32", "openai", True)
    assert model.weights_fingerprint() == "hub:open_clip:ViT-B-32:openai"
    transform = repr(model.get_preprocess_function())
    assert "Resize(size=224, interpolation=bicubic" in transform
    assert "0.48145466" in transform  # CLIP's mean, not ImageNet's


def test_open_clip_arch_and_tag() -> None:
    model = CLIPModel(version="ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert (model.spec.arch, model.spec.tag, model.spec.quick_gelu) == (
        "ViT-B-32",
        "laion2b_s34b_b79k",
        False,
    )
    assert model.identity != CLIPModel(version="ViT-B-32").identity
    with pytest.raises(ConfigError, match="laion2b_s34b_b79k"):
        _ = CLIPModel(version="ViT-B-32", pretrained="no-such-tag").spec
    with pytest.raises(ConfigError, match="pretrained="):
        _ = CLIPModel(version="convnext_base").spec  # no OpenAI weights: a tag is needed
    with pytest.raises(UnknownNameError, match="ViT-B-32"):
        _ = CLIPModel(version="ViT-B/33").spec


def test_local_checkpoint_with_module_prefixes_round_trips(tmp_path, images: torch.Tensor) -> None:
    torch.manual_seed(7)
    source = open_clip.create_model(TINY).state_dict()
    path = tmp_path / "clip.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}}, path)
    loaded = CLIPModel(version=TINY, weights_path=path, device="cpu")
    visual = {f"visual.{k}": v for k, v in loaded.model.visual.state_dict().items()}
    assert visual and all(torch.equal(v, source[k]) for k, v in visual.items())
    assert loaded.weights_fingerprint().startswith("sha256:")
    assert not torch.allclose(loaded.get_output(images)["output"], tiny().get_output(images)["output"])


def test_offline_pretrained_request_fails_with_how_to_use_a_local_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsError) as raised:
        _ = CLIPModel(version="ViT-B/32", device="cpu").model
    message = str(raised.value)
    assert "ViT-B-32" in message and "openai" in message
    assert "weights_path=" in message and "pretrained=false" in message


def test_layers_command_and_registry() -> None:
    result = CliRunner().invoke(main, ["layers", f"clip:version={TINY},pretrained=false", "--names"])
    assert result.exit_code == 0, result.output
    assert BLOCKS[1] in result.output.splitlines()
    assert isinstance(get_registry().create("model", "clip", version=TINY, pretrained=False), CLIPModel)
