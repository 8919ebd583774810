"""IResNet and FaceNet: layer shape tables, checkpoints with a margin head, facenet-pytorch agreement."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from facebench.errors import WeightsError
from facebench_models.facenet import FaceNetModel
from facebench_models.iresnet import IResNetModel
from facebench_models.torchvision_family import TorchvisionModel

IRESNET18_SHAPES = {
    "conv1": (64, 112, 112),
    "layer1": (64, 56, 56),
    "layer2": (128, 28, 28),
    "layer3": (256, 14, 14),
    "layer4": (512, 7, 7),
    "bn2": (512, 7, 7),
    "fc": (512,),
    "features": (512,),
}
FACENET_SHAPES = {
    "conv2d_1a": (32, 79, 79),
    "conv2d_2b": (64, 77, 77),
    "maxpool_3a": (64, 38, 38),
    "conv2d_4a": (192, 36, 36),
    "conv2d_4b": (256, 17, 17),
    "repeat_1": (256, 17, 17),
    "mixed_6a": (896, 8, 8),
    "repeat_2": (896, 8, 8),
    "mixed_7a": (1792, 3, 3),
    "block8": (1792, 3, 3),
    "avgpool_1a": (1792, 1, 1),
    "last_bn": (512,),
}


def layer_shapes(network: torch.nn.Module, names: list[str], size: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [
        network.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
        )
        for name in names
    ]
    with torch.no_grad():
        network(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.fixture(scope="module")
def iresnet18() -> IResNetModel:
    return IResNetModel(arch="iresnet18", pretrained=False, device="cpu", seed=2)


def test_iresnet_layer_shapes_and_parameter_counts(iresnet18: IResNetModel) -> None:
    assert layer_shapes(iresnet18.model, list(IRESNET18_SHAPES), 112) == IRESNET18_SHAPES
    # insightface's iresnet18 / iresnet50 have 24.0 M / 43.6 M parameters
    assert sum(p.numel() for p in iresnet18.model.parameters()) == 24_025_600
    assert iresnet18.preprocessing.describe() == {
        "resize": [112, 112],
        "crop": None,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "grayscale": False,
        "interpolation": "bilinear",
    }


def test_facenet_layer_shapes() -> None:
    model = FaceNetModel(pretrained=False, device="cpu")
    assert layer_shapes(model.model, list(FACENET_SHAPES), 160) == FACENET_SHAPES
    embedding = model.get_output(torch.randn(2, 3, 160, 160))["output"]
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))


def test_facenet_matches_facenet_pytorch_with_the_same_weights(tmp_path: Path) -> None:
    reference_module = pytest.importorskip("facenet_pytorch")
    torch.manual_seed(0)
    reference = reference_module.InceptionResnetV1(classify=True, num_classes=16).eval()
    reference.classify = False  # keep the classifier's weights, return the embedding
    for module in reference.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "facenet.pt"
    torch.save(reference.state_dict(), path)  # includes logits.* (16 identities), as published files do
    model = FaceNetModel(weights_path=path, device="cpu")
    images = torch.randn(2, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(images)
    torch.testing.assert_close(model.get_output(images)["output"], expected, atol=1e-5, rtol=1e-4)
    assert model.ignored_head == ["logits.bias", "logits.weight"]


@pytest.mark.parametrize("layout", ["flat", "sections", "prefixed"])
def test_margin_head_checkpoints_load_the_backbone_and_say_so(
    iresnet18: IResNetModel, tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    backbone = iresnet18.model.state_dict()
    head = {"kernel": torch.randn(512, 10)}  # ArcFace margin weights: one column per training identity
    if layout == "flat":
        checkpoint = {**backbone, **{f"head.{k}": v for k, v in head.items()}}
    elif layout == "sections":
        checkpoint = {"backbone": backbone, "head": head, "epoch": 3}
    else:
        checkpoint = {"state_dict": {f"module.backbone.{k}": v for k, v in backbone.items()}}
        checkpoint["state_dict"]["module.margin.weight"] = torch.randn(10, 512)
    path = tmp_path / f"{layout}.pth"
    torch.save(checkpoint, path)
    loaded = IResNetModel(arch="iresnet18", weights_path=path, device="cpu", seed=9)
    images = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(3))
    with caplog.at_level(logging.WARNING, logger="facebench.models"):
        torch.testing.assert_close(
            loaded.get_output(images)["output"], iresnet18.get_output(images)["output"]
        )
    assert loaded.ignored_head and "ignored the training margin head" in caplog.text


def test_checkpoint_that_does_not_fit_says_what_differs(iresnet18: IResNetModel, tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save({**iresnet18.model.state_dict(), "decoder.weight": torch.zeros(3)}, path)
    with pytest.raises(WeightsError, match=r"not in the network: decoder\.weight"):
        _ = IResNetModel(arch="iresnet18", weights_path=path, device="cpu").model
    with pytest.raises(WeightsError, match=r"missing from the file: layer1\.2\..*check arch"):
        _ = IResNetModel(arch="iresnet34", weights_path=path, device="cpu").model


def test_face_trained_torchvision_checkpoint_with_num_identities(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    torch.manual_seed(4)
    network = resnet18(num_classes=7).eval()
    path = tmp_path / "face_resnet18.pth"
    torch.save({"model": network.state_dict(), "optimizer": {"lr": torch.tensor(0.1)}}, path)
    model = TorchvisionModel(
        arch="resnet18", num_identities=7, weights_path=path, device="cpu", extract_layers=["fc"]
    )
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(model.get_output(images)["fc"], network(images))
    with pytest.raises(WeightsError, match=r"fc\.weight \(7, 512\) vs \(1000, 512\).*num_identities"):
        _ = TorchvisionModel(arch="resnet18", weights_path=path, device="cpu").model
