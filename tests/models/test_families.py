"""The model families (torchvision, timm, huggingface, iresnet, facenet): end to end offline with
random weights and tiny architectures; preprocessing read off each library; arch errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from facebench.cli import main
from facebench.errors import UnknownNameError, WeightsError
from facebench.registry import get_registry
from facebench_models.facenet import FaceNetModel
from facebench_models.huggingface import HuggingFaceModel
from facebench_models.iresnet import IResNetModel
from facebench_models.timm_family import TimmModel
from facebench_models.torchvision_family import TorchvisionModel

FAMILIES = ("torchvision", "timm", "huggingface", "iresnet", "facenet")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 96x80 noise images (three 'identities' x two shifted views) and a pairs file."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for identity in range(3):
        base = rng.integers(0, 256, size=(100, 100, 3), dtype=np.uint8)
        for view in range(2):
            Image.fromarray(base[view * 4 : view * 4 + 80, view * 2 : view * 2 + 96]).save(
                folder / f"id{identity}_{view}.png"
            )
    rows = ["img1,img2,same"]
    rows += [f"id{i}_0.png,id{i}_1.png,1" for i in range(3)]
    rows += [f"id{i}_0.png,id{(i + 1) % 3}_1.png,0" for i in range(3)]
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    return folder


def model_specs(tiny_vit: Path) -> dict[str, str]:
    return {
        "torchvision": "torchvision:arch=resnet18,pretrained=false,resize=64,crop=64",
        "timm": "timm:arch=resnet10t,pretrained=false,resize=64,crop=64",
        "huggingface": f"huggingface:version={tiny_vit}",
        "iresnet": "iresnet:arch=iresnet18,pretrained=false",
        "facenet": "facenet:pretrained=false",
    }


def test_families_are_registered_with_typed_options() -> None:
    model = get_registry().create("model", "timm", arch="resnet10t", pretrained="false", device="cpu")
    assert isinstance(model, TimmModel) and model.pretrained is False
    classes = (TorchvisionModel, HuggingFaceModel, IResNetModel, FaceNetModel)
    for family, cls in zip(("torchvision", "huggingface", "iresnet", "facenet"), classes, strict=True):
        assert get_registry().get("model", family).spec.target.endswith(cls.__name__)


def test_every_family_runs_end_to_end_offline(
    photos: Path, tiny_vit: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["run"]
    for family, spec in model_specs(tiny_vit).items():
        args += ["--model", f"{spec},name={family},device=cpu"]
    args += [
        "--task",
        "accuracy:label_column=same,n_folds=3",
        "--pairs",
        str(photos / "pairs.csv"),
        "--images",
        str(photos),
        "--metric",
        "cosine",
        "--no-cache",
        "--quiet",
        "--output",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {model["name"] for model in document["models"]} == set(FAMILIES)
    for family in FAMILIES:
        distances = list((tmp_path / "out" / "distances" / family).rglob("*.csv"))
        assert distances, family
        import pandas as pd

        values = pd.read_csv(distances[0])["model_computed_distance"]
        assert len(values) == 6 and values.notna().all() and (values > 0).all(), family


@pytest.mark.parametrize(
    ("make", "size", "layers"),
    [
        (lambda **o: TorchvisionModel(arch="resnet18", pretrained=False, **o), 64, ["layer3", "fc"]),
        (lambda **o: TimmModel(arch="test_vit", pretrained=False, **o), 160, ["blocks.0", "norm"]),
        (lambda **o: IResNetModel(arch="iresnet18", pretrained=False, **o), 112, ["layer2", "features"]),
        (lambda **o: FaceNetModel(pretrained=False, **o), 160, ["repeat_1.0", "last_bn"]),
    ],
    ids=["torchvision", "timm", "iresnet", "facenet"],
)
def test_layers_are_listed_extracted_and_deterministic_under_a_seed(
    make, size: int, layers: list[str]
) -> None:
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    model = make(device="cpu", seed=5, extract_layers=layers, reduction="mean")
    assert set(layers) <= set(model.layer_names())
    first = model.get_output(images)
    again = make(device="cpu", seed=5, extract_layers=layers, reduction="mean").get_output(images)
    other = make(device="cpu", seed=6, extract_layers=layers, reduction="mean").get_output(images)
    for layer in layers:
        assert first[layer].shape[0] == 2 and first[layer].dtype == torch.float32
        torch.testing.assert_close(first[layer], again[layer], rtol=0, atol=0)
    assert not torch.allclose(first[layers[0]], other[layers[0]])


def test_huggingface_blocks_and_pooled_output(tiny_vit: Path) -> None:
    model = HuggingFaceModel(version=str(tiny_vit), device="cpu")
    blocks = [name for name in model.layer_names() if name.rsplit(".", 1)[-1].isdigit() and "layer" in name]
    assert len(blocks) == 2
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    final = model.get_output(images)["output"]
    with torch.no_grad():
        reference = model.model(pixel_values=images).last_hidden_state[
            :, 0
        ]  # ViT: the normalised class token
    torch.testing.assert_close(final, reference)
    per_block = HuggingFaceModel(version=str(tiny_vit), device="cpu", extract_layers=blocks).get_output(
        images
    )
    assert all(per_block[block].shape == (2, 32) for block in blocks)  # cls token by default


def test_final_output_of_classifier_families_is_the_classifier_input() -> None:
    model = TorchvisionModel(arch="resnet18", pretrained=False, device="cpu")
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    net = model.model
    with torch.no_grad():
        x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        pooled = torch.flatten(net.avgpool(net.layer4(net.layer3(net.layer2(net.layer1(x))))), 1)
    torch.testing.assert_close(model.get_output(images)["output"], pooled)


# ----------------------------------------------------------------------------- preprocessing
def _photo() -> Image.Image:
    rng = np.random.default_rng(4)
    return Image.fromarray(rng.integers(0, 256, size=(180, 240, 3), dtype=np.uint8))


def test_torchvision_preprocessing_is_the_weights_transforms() -> None:
    from torchvision.models import ViT_B_16_Weights

    model = TorchvisionModel(arch="vit_b_16", weights="IMAGENET1K_SWAG_LINEAR_V1")
    assert model.preprocessing.interpolation == "bicubic"
    expected = ViT_B_16_Weights.IMAGENET1K_SWAG_LINEAR_V1.transforms()(_photo())
    torch.testing.assert_close(model.preprocessing.transform()(_photo()), expected)


def test_timm_preprocessing_is_timms_eval_transform() -> None:
    from timm.data import create_transform, resolve_data_config

    model = TimmModel(arch="resnet10t", pretrained=False)
    config = resolve_data_config({}, pretrained_cfg=model._pretrained_cfg().to_dict())
    expected = create_transform(**config)(_photo())
    assert model.preprocessing.crop == 176 and model.preprocessing.resize == 201
    torch.testing.assert_close(model.preprocessing.transform()(_photo()), expected)


def test_huggingface_preprocessing_matches_its_image_processor(tiny_vit: Path) -> None:
    from transformers import AutoImageProcessor

    processor = AutoImageProcessor.from_pretrained(tiny_vit)
    expected = processor(_photo(), return_tensors="pt")["pixel_values"][0]
    ours = HuggingFaceModel(version=str(tiny_vit)).preprocessing.transform()(_photo())
    assert ours.shape == expected.shape == (3, 32, 32)
    # PIL resize both ways; transformers rescales in float32 before normalising
    torch.testing.assert_close(ours, expected, atol=2 / 255 / 0.5, rtol=0)


# ----------------------------------------------------------------------------- errors
def test_unknown_arch_says_did_you_mean() -> None:
    with pytest.raises(UnknownNameError, match=r"did you mean 'resnet50'.*describe torchvision --available"):
        TorchvisionModel(arch="resnet5O")
    with pytest.raises(UnknownNameError, match=r"did you mean 'convnext_tiny'"):
        TimmModel(arch="convnext_tiniy")
    with pytest.raises(UnknownNameError, match=r"did you mean 'iresnet100'"):
        IResNetModel(arch="iresnet101")
    with pytest.raises(UnknownNameError, match=r"IMAGENET1K_V1"):
        TorchvisionModel(arch="resnet18", weights="IMAGENET1K_V9")


def test_offline_hub_weights_fail_fast_with_how_to_pass_a_local_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError, match=r"resnet18-.*\.pth.*weights_path=.*pretrained=false"):
        _ = TorchvisionModel(arch="resnet18", device="cpu").model
    with pytest.raises(WeightsError, match=r"timm weights 'resnet10t\..*weights_path="):
        _ = TimmModel(arch="resnet10t", device="cpu").model
    with pytest.raises(WeightsError, match=r"weights_path=.*backbone\.pth.*pretrained=false"):
        _ = IResNetModel(arch="iresnet18", device="cpu").model
    with pytest.raises(WeightsError, match=r"version=<a local folder"):
        _ = HuggingFaceModel(version="google/vit-base-patch16-224-in21k").preprocessing


def test_identity_includes_family_arch_and_weights(tiny_vit: Path) -> None:
    a = TorchvisionModel(arch="resnet18", pretrained=False)
    assert a.identity != TorchvisionModel(arch="resnet34", pretrained=False).identity
    assert a.identity != TimmModel(arch="resnet18", pretrained=False).identity
    assert a.identity != TorchvisionModel(arch="resnet18", pretrained=False, seed=1).identity
    hub = TorchvisionModel(arch="vit_b_16", weights="IMAGENET1K_V1")
    assert hub.weights_fingerprint() == "hub:torchvision:ViT_B_16_Weights.IMAGENET1K_V1"
    assert hub.identity != TorchvisionModel(arch="vit_b_16", weights="IMAGENET1K_SWAG_LINEAR_V1").identity
    assert TimmModel(arch="resnet10t").weights_fingerprint() == "hub:timm:resnet10t.c3_in1k"


def test_huggingface_image_text_model_keeps_its_vision_tower(tmp_path: Path) -> None:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    tiny = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    config = CLIPConfig(
        vision_config={**tiny, "image_size": 32, "patch_size": 8},
        text_config={**tiny, "vocab_size": 64, "max_position_embeddings": 16},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(tmp_path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path
    )
    model = HuggingFaceModel(version=str(tmp_path), device="cpu")
    assert model.preprocessing.resize == 32 and model.preprocessing.crop == 32
    assert model.preprocessing.interpolation == "bicubic"
    names = model.layer_names()
    assert all(name.startswith("vision_model") for name in names)
    assert "vision_model.post_layernorm" in names
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        pooled = model.model.vision_model(pixel_values=images).pooler_output  # post-layernorm class token
    torch.testing.assert_close(model.get_output(images)["output"], pooled)
