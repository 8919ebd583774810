"""VGG16 (torchvision) with random weights at 64 px: layers, reductions, checkpoints, offline errors."""

from __future__ import annotations

import pytest
import torch
import torchvision
from click.testing import CliRunner
from PIL import Image
from torchvision import transforms

from facebench.cli import main
from facebench.errors import ConfigError, WeightsError
from facebench.registry import get_registry
from facebench_models.vgg16 import Vgg16Model

LAYERS = ["features.0", "features.1", "features.29", "classifier.4"]


@pytest.fixture(scope="module")
def vgg() -> Vgg16Model:
    model = Vgg16Model(
        pretrained=False, extract_layers=LAYERS, reduction={"features.29": "mean"}, device="cpu", seed=3
    )
    _ = model.model
    return model


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_layer_names_are_the_torchvision_module_names(vgg: Vgg16Model) -> None:
    names = vgg.layer_names()
    assert names[:3] == ["features", "features.0", "features.1"]
    assert [n for n in names if n.startswith("features.")] == [f"features.{i}" for i in range(31)]
    assert [n for n in names if n.startswith("classifier.")] == [f"classifier.{i}" for i in range(7)]


def test_several_layers_come_from_one_forward_pass_with_their_reductions(
    vgg: Vgg16Model, images: torch.Tensor
) -> None:
    calls = []
    hook = vgg.model.features[0].register_forward_hook(lambda *_: calls.append(1))
    try:
        outputs = vgg.get_output(images)
    finally:
        hook.remove()
    assert len(calls) == 1
    assert {name: tuple(t.shape) for name, t in outputs.items()} == {
        "features.0": (2, 64 * 64 * 64),
        "features.1": (2, 64 * 64 * 64),
        "features.29": (2, 512),
        "classifier.4": (2, 4096),
    }
    net = vgg.model
    with torch.no_grad():
        conv = net.features[0](images)
        last_relu = net.features[:30](images)
        fc7 = net.classifier[:5](torch.flatten(net.avgpool(net.features(images)), 1))
    torch.testing.assert_close(outputs["features.0"], conv.flatten(1))
    torch.testing.assert_close(outputs["features.29"], last_relu.mean(dim=(2, 3)))
    torch.testing.assert_close(outputs["classifier.4"], fc7)


def test_conv_output_is_not_overwritten_by_the_following_inplace_relu(
    vgg: Vgg16Model, images: torch.Tensor
) -> None:
    assert isinstance(vgg.model.features[1], torch.nn.ReLU) and vgg.model.features[1].inplace
    outputs = vgg.get_output(images)
    conv, relu = outputs["features.0"], outputs["features.1"]
    assert (conv < 0).any()
    assert not torch.equal(conv, relu)
    assert torch.equal(relu, conv.clamp(min=0))


def test_defaults_and_random_weights_follow_the_seed(vgg: Vgg16Model, images: torch.Tensor) -> None:
    default = Vgg16Model()
    assert default.extract_layers == ["classifier.4"]
    assert default.reduction_for("classifier.4") == "flatten"
    assert default.weights_fingerprint() == "hub:torchvision:VGG16_Weights.IMAGENET1K_V1"
    assert vgg.weights_fingerprint() == "random:seed=3"

    again = Vgg16Model(
        pretrained=False, extract_layers=LAYERS, reduction={"features.29": "mean"}, device="cpu", seed=3
    )
    expected = vgg.get_output(images)
    assert all(torch.equal(t, expected[name]) for name, t in again.get_output(images).items())


def test_preprocessing_is_the_imagenet_weights_one() -> None:
    image = Image.fromarray(
        torch.randint(
            0, 256, (300, 400, 3), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
        ).numpy()
    )
    reference = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )(image)
    tensor = Vgg16Model(pretrained=False).get_preprocess_function()(image)
    assert tensor.shape == (3, 224, 224)
    torch.testing.assert_close(tensor, reference, atol=1e-5, rtol=0)


def test_face_checkpoint_with_num_identities_and_module_prefixes_round_trips(
    vgg: Vgg16Model, tmp_path, images: torch.Tensor
) -> None:
    face = Vgg16Model(pretrained=False, num_identities=7, device="cpu", seed=5)
    last = face.model.classifier[6]
    assert (last.in_features, last.out_features) == (4096, 7)
    source = face.model.state_dict()
    assert not torch.equal(
        source["features.0.weight"], vgg.model.state_dict()["features.0.weight"]
    )  # seed 5 != 3
    path = tmp_path / "face_vgg.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}, "epoch": 3}, path)

    loaded = Vgg16Model(
        weights_path=path, num_identities=7, extract_layers="classifier.6", device="cpu", seed=0
    )
    state = loaded.model.state_dict()
    assert state.keys() == source.keys()
    assert all(torch.equal(state[k], source[k]) for k in source)
    assert loaded.get_output(images)["classifier.6"].shape == (2, 7)
    assert loaded.weights_fingerprint().startswith("sha256:")


def test_num_identities_needs_a_checkpoint_or_random_weights() -> None:
    with pytest.raises(ConfigError, match="weights_path"):
        Vgg16Model(num_identities=8749)  # ImageNet weights have no face-identity layer
    with pytest.raises(ConfigError, match="positive"):
        Vgg16Model(pretrained=False, num_identities=0)


def test_offline_pretrained_request_fails_with_how_to_use_a_local_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty weights cache
    with pytest.raises(WeightsError) as raised:
        _ = Vgg16Model(device="cpu").model
    message = str(raised.value)
    assert "vgg16-397923af.pth" in message
    assert "weights_path=" in message and "pretrained=false" in message


def test_layers_command_shows_type_and_shape_of_a_real_forward_pass_and_the_default() -> None:
    result = CliRunner().invoke(main, ["layers", "vgg16:pretrained=false"])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:-1]}
    network = torchvision.models.vgg16().eval()
    seen: dict[str, tuple[str, str]] = {}

    def record(name: str):
        def hook(module, _inputs, output) -> None:
            seen.setdefault(name, (type(module).__name__, "x".join(map(str, output.shape[1:]))))

        return hook

    for name, module in network.named_modules():
        if name:
            module.register_forward_hook(record(name))
    with torch.inference_mode():
        network(torch.zeros(1, 3, 224, 224))
    assert list(rows) == [name for name, _ in network.named_modules() if name]
    assert set(rows) == set(seen)  # every layer runs
    for name, (module_type, shape) in seen.items():
        expected = (
            [name, "*", module_type, shape, "yes"]
            if name == "classifier.4"
            else [name, module_type, shape, "yes"]
        )
        assert rows[name] == expected
    names = CliRunner().invoke(main, ["layers", "vgg16:pretrained=false", "--names"]).output.splitlines()
    assert names == list(rows)


def test_python_and_the_command_line_name_the_model_alike() -> None:
    assert Vgg16Model(pretrained=False).name == "vgg16"
    assert get_registry().create("model", "vgg16", pretrained=False).name == "vgg16"
    assert Vgg16Model(name="mine").name == "mine"


def test_registered_as_vgg16() -> None:
    model = get_registry().create("model", "vgg16", pretrained=False, extract_layers=["features.3"])
    assert isinstance(model, Vgg16Model) and model.extract_layers == ["features.3"]
