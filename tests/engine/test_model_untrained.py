"""pretrained=false on a model that does not declare it: the built network re-initialised from seed."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.registry import get_registry
from facebench.typed_options import convert_options, declared_options
from facebench.untrained import declares_pretrained
from facebench_models.vgg16 import Vgg16Model

TRAINED = 0.5  # every value the plugin "loads"


class Scale(nn.Module):
    """A module without reset_parameters (as dlib's affine layers)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None]


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(8))
        self.body = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(3, 8, 3),
                bn=nn.BatchNorm2d(8),
                scale=Scale(8),
                pool=nn.AdaptiveAvgPool2d(1),
                flat=nn.Flatten(),
            )
        )
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x) + self.token)


class PluginNet(BaseModel):
    """A third-party model that loads its weights in _build_model and knows nothing of pretrained."""

    def __init__(self, width: int = 8, **options) -> None:
        super().__init__(**options)
        self.width = width

    def _build_model(self) -> nn.Module:
        net = Net()
        with torch.no_grad():
            for tensor in net.state_dict().values():
                tensor.fill_(TRAINED)
        return net

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(resize=16, crop=None)


def test_every_model_takes_pretrained_false_as_a_typed_option() -> None:
    assert convert_options("model", "plugin-net", PluginNet, {"pretrained": "false"}) == {"pretrained": False}
    assert not declares_pretrained(PluginNet) and declares_pretrained(Vgg16Model)


def test_untrained_control_replaces_every_loaded_weight_by_default_initialisation() -> None:
    net = PluginNet(pretrained=False, seed=1, device="cpu").model
    for name, parameter in net.named_parameters():
        assert not torch.any(parameter == TRAINED), name
    fan_in = 3 * 3 * 3
    assert net.body.conv.weight.abs().max() <= 1 / math.sqrt(fan_in)  # PyTorch's Kaiming-uniform bound
    assert net.fc.weight.abs().max() <= 1 / math.sqrt(8) and net.fc.weight.std() > 0
    bn = net.body.bn
    assert torch.equal(bn.weight, torch.ones(8)) and torch.equal(bn.bias, torch.zeros(8))
    assert torch.equal(bn.running_mean, torch.zeros(8)) and torch.equal(bn.running_var, torch.ones(8))
    for leftover in (net.token, net.body.scale.gamma):  # no reset_parameters: truncated N(0, 0.02)
        assert leftover.abs().max() <= 0.04 and leftover.std() > 0


def test_untrained_control_follows_the_seed_and_has_its_own_identity() -> None:
    def state(seed: int) -> dict[str, torch.Tensor]:
        return PluginNet(pretrained=False, seed=seed, device="cpu").model.state_dict()

    one, again, other = state(1), state(1), state(2)
    assert all(torch.equal(one[k], again[k]) for k in one)
    assert not torch.equal(one["fc.weight"], other["fc.weight"])
    trained, untrained = PluginNet(device="cpu"), PluginNet(pretrained=False, device="cpu")
    assert untrained.weights_fingerprint() == "untrained:reset_parameters,seed=0"
    assert untrained.identity != trained.identity
    assert untrained.identity != PluginNet(pretrained=False, seed=1, device="cpu").identity
    assert "pretrained" not in trained.model_options()  # BaseModel's own: in the fingerprint only
    assert torch.all(trained.model.fc.weight == TRAINED)


def test_every_registered_model_offers_the_untrained_control() -> None:
    entries = get_registry().entries("model")
    assert {"vgg16", "dinov2", "clip", "timm"} <= {entry.spec.name for entry in entries}
    for entry in entries:
        option = declared_options(entry.spec.load()).get("pretrained")
        assert option is not None and option.default is True, entry.spec.name
