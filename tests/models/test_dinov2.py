"""DINOv2 (transformers) with a tiny config and random weights at 32 px."""

from __future__ import annotations

import huggingface_hub
import pytest
import torch

from facebench.errors import ConfigError, WeightsError
from facebench.registry import get_registry
from facebench_models.dinov2 import DinoModel

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "mlp_ratio": 2,
    "image_size": 32,
    "patch_size": 8,
}
BLOCKS = ["encoder.layer.0", "encoder.layer.1", "encoder.layer.2"]


def tiny(**options) -> DinoModel:
    return DinoModel(config=TINY, pretrained=False, image_size=32, device="cpu", **options)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def empty_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))


def test_every_transformer_block_is_a_layer() -> None:
    names = tiny().layer_names()
    assert [n for n in names if n.count(".") == 2 and n.startswith("encoder.layer.")] == BLOCKS
    assert "layernorm" in names


def test_blocks_come_from_one_pass_with_cls_by_default_and_mean_on_request(images: torch.Tensor) -> None:
    model = tiny(extract_layers=[*BLOCKS, "layernorm"], reduction={"encoder.layer.1": "mean"})
    calls = []
    hook = model.model.embeddings.register_forward_hook(lambda *_: calls.append(1))
    try:
        outputs = model.get_output(images)
    finally:
        hook.remove()
    assert len(calls) == 1
    with torch.no_grad():
        reference = model.model(pixel_values=images, output_hidden_states=True)
    hidden = reference.hidden_states  # embeddings, then one entry per block
    torch.testing.assert_close(outputs["encoder.layer.0"], hidden[1][:, 0])
    torch.testing.assert_close(outputs["encoder.layer.1"], hidden[2].mean(dim=1))
    torch.testing.assert_close(outputs["encoder.layer.2"], hidden[3][:, 0])
    torch.testing.assert_close(outputs["layernorm"], reference.pooler_output)
    assert all(t.shape == (3, 32) for t in outputs.values())


def test_default_layer_is_the_class_token_embedding(images: torch.Tensor) -> None:
    model = tiny()
    assert model.extract_layers == ["layernorm"] and model.reduction_for("layernorm") == "cls"
    with torch.no_grad():
        pooled = model.model(pixel_values=images).pooler_output
    torch.testing.assert_close(model.get_output(images)["layernorm"], pooled)


def test_random_weights_follow_the_seed(images: torch.Tensor) -> None:
    first = tiny(seed=1).get_output(images)["layernorm"]
    assert torch.equal(first, tiny(seed=1).get_output(images)["layernorm"])
    assert not torch.allclose(first, tiny(seed=2).get_output(images)["layernorm"])
    assert tiny(seed=1).weights_fingerprint() == "random:seed=1"
    assert tiny().identity != DinoModel(config={**TINY, "hidden_size": 16}, pretrained=False).identity


def test_preprocessing_crops_to_image_size() -> None:
    from PIL import Image

    image = Image.new("RGB", (50, 40), (255, 0, 0))
    tensor = tiny().get_preprocess_function()(image)
    assert tensor.shape == (3, 32, 32)
    torch.testing.assert_close(
        tensor[:, 0, 0], torch.tensor([(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    )
    assert DinoModel().get_preprocess_function()(image).shape == (3, 224, 224)


def test_local_folder_saved_with_save_pretrained_loads_the_same_network(
    tmp_path, images: torch.Tensor
) -> None:
    source = tiny(seed=4)
    source.model.save_pretrained(tmp_path / "dino")
    loaded = DinoModel(
        version=str(tmp_path / "dino"), image_size=32, device="cpu", extract_layers=BLOCKS[-1:]
    )
    torch.testing.assert_close(
        loaded.get_output(images)["encoder.layer.2"],
        source.model(pixel_values=images, output_hidden_states=True).hidden_states[3][:, 0],
    )
    assert loaded.weights_fingerprint().startswith("sha256:")


def test_state_dict_with_module_prefixes_loads_into_a_config(tmp_path) -> None:
    source = tiny(seed=6).model.state_dict()
    path = tmp_path / "dino.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}}, path)
    state = tiny(weights_path=path).model.state_dict()
    assert all(torch.equal(state[k], source[k]) for k in source)


def test_official_architecture_with_random_weights_needs_no_download(empty_hub_cache) -> None:
    model = DinoModel(version="facebook/dinov2-small", pretrained=False, device="cpu")
    assert model.model.config.hidden_size == 384
    assert "encoder.layer.11" in model.layer_names() and "encoder.layer.12" not in model.layer_names()


def test_offline_pretrained_request_fails_with_how_to_use_a_local_folder(empty_hub_cache) -> None:
    with pytest.raises(WeightsError) as raised:
        _ = DinoModel(device="cpu").model
    message = str(raised.value)
    assert "facebook/dinov2-base" in message and "HF_HUB_OFFLINE" in message
    assert "local folder" in message and "pretrained=false" in message


def test_config_without_pretrained_false_is_refused() -> None:
    with pytest.raises(ConfigError, match="pretrained=false"):
        DinoModel(config=TINY)


def test_registered_as_dinov2() -> None:
    model = get_registry().create(
        "model", "dinov2", config=TINY, pretrained=False, extract_layers="encoder.layer.0"
    )
    assert isinstance(model, DinoModel) and model.layer_names()[-1] == "layernorm"
