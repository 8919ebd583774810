"""BaseModel: hooks, reductions, layers, identity, weights loading, devices."""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict

import pytest
import torch
from torch import nn

from facebench.device import autocast_dtype, resolve_device
from facebench.errors import ConfigError, UnknownNameError, WeightsError
from facebench.model import BaseModel, load_state_dict_file


def batch(seed: int = 0, n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_conv_output_is_copied_before_the_inplace_relu_changes_it(tiny):
    model = tiny(extract_layers=["conv", "relu"])
    x = batch()
    out = model.get_output(x)
    expected_conv = model.model.conv(x).flatten(1)
    assert (expected_conv < 0).any()  # so an in-place ReLU would visibly change it
    torch.testing.assert_close(out["conv"], expected_conv)
    torch.testing.assert_close(out["relu"], expected_conv.clamp(min=0))
    assert not torch.equal(out["conv"], out["relu"])


def test_conv_alone_is_not_rectified(tiny):
    out = tiny(extract_layers="conv").get_output(batch())
    assert (out["conv"] < 0).any()


def test_several_layers_come_from_one_forward_pass(tiny):
    model = tiny(extract_layers=["conv", "pool", "fc"])
    x = batch()
    out = model.get_output(x)
    assert model.forward_calls == 1
    assert list(out) == ["conv", "pool", "fc"]
    torch.testing.assert_close(out["fc"], model.model(x))
    assert out["pool"].shape == (3, 16)


def test_no_layers_gives_the_final_output(tiny):
    model = tiny(extract_layers=[])
    x = batch()
    out = model.get_output(x)
    assert list(out) == ["output"]
    torch.testing.assert_close(out["output"], model.model(x))


def test_reductions_default_and_per_layer_override(tiny):
    model = tiny(extract_layers=["conv", "pool"], reduction={"conv": "mean"})
    x = batch()
    out = model.get_output(x)
    conv = model.model.conv(x)
    torch.testing.assert_close(out["conv"], conv.mean(dim=(2, 3)))
    assert model.reduction_for("pool") == "flatten"
    assert out["pool"].shape == (3, 16)


class TokenNet(BaseModel):
    """Blocks that return ``(hidden_states,)`` tuples of shape (B, T, D), as transformers do."""

    default_reduction = "cls"

    def _build_model(self) -> nn.Module:
        class Block(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = nn.Linear(6, 6)

            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
                return (self.linear(x),)

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.block = Block()

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.block(x)[0]

        return Net()


def test_token_outputs_take_tuple_element_zero_and_reduce_by_cls_or_mean():
    tokens = torch.randn(2, 5, 6)
    cls_model = TokenNet(extract_layers="block", device="cpu")
    mean_model = TokenNet(extract_layers="block", reduction="mean", device="cpu")
    expected = cls_model.model.block.linear(tokens)
    torch.testing.assert_close(cls_model.get_output(tokens)["block"], expected[:, 0])
    torch.testing.assert_close(
        mean_model.get_output(tokens)["block"], mean_model.model.block.linear(tokens).mean(dim=1)
    )


def test_cls_on_a_conv_layer_is_a_clear_error(tiny):
    with pytest.raises(ConfigError, match=r"'cls'.*shape \(3, 4, 32, 32\)"):
        tiny(extract_layers="conv", reduction="cls").get_output(batch())


def test_bad_reduction_options_fail_at_construction(tiny):
    with pytest.raises(ConfigError, match="unknown reduction 'max'"):
        tiny(reduction="max")
    with pytest.raises(ConfigError, match=r"'fc'.*not among the extracted layers"):
        tiny(extract_layers=["conv"], reduction={"fc": "mean"})


def test_unknown_layer_lists_the_valid_names(tiny):
    model = tiny(extract_layers=["conv", "fcc"])
    with pytest.raises(UnknownNameError) as info:
        model.check_layers()
    message = str(info.value)
    assert "'fcc'" in message and "did you mean 'fc'" in message
    for name in ("conv", "relu", "pool", "flat", "fc"):
        assert name in message


def test_construction_is_lazy(tiny):
    model = tiny()
    assert model._model is None
    assert model.layer_names() == ["conv", "relu", "pool", "flat", "fc"]


def test_seed_makes_random_weights_reproducible(tiny):
    x = batch()
    a = tiny(seed=1).get_output(x)["conv"]
    b = tiny(seed=1).get_output(x)["conv"]
    c = tiny(seed=2).get_output(x)["conv"]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)
    assert tiny(seed=1).weights_fingerprint() == "random:seed=1"


def test_identity_is_stable_and_tracks_weights_and_preprocessing(tiny, tmp_path):
    assert tiny().identity == tiny(name="renamed", extract_layers="fc").identity
    assert tiny(seed=0).identity != tiny(seed=1).identity
    assert tiny().identity != tiny(preprocess_function=lambda image: torch.zeros(3, 32, 32)).identity

    weights = tmp_path / "w.pth"
    torch.save(tiny(seed=3).model.state_dict(), weights)
    model = tiny(weights_path=weights)
    assert model.weights_fingerprint() == "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    first = model.identity
    torch.save(tiny(seed=4).model.state_dict(), weights)
    os.utime(weights, ns=(1, 1))  # a new mtime, even on coarse clocks
    assert tiny(weights_path=weights).identity != first


def test_describe_has_what_results_json_needs(tiny):
    info = tiny(name="t", extract_layers=["conv", "fc"], reduction={"conv": "mean"}).describe()
    assert info["name"] == "t"
    assert info["layers"] == ["conv", "fc"]
    assert info["reductions"] == {"conv": "mean", "fc": "flatten"}
    assert info["weights_fingerprint"] == "random:seed=0"
    assert info["precision"] == "fp32" and info["device"] == "cpu"
    assert json.loads(info["preprocessing"])["resize"] == 32


def test_preprocess_image_gives_a_chw_tensor(tiny, images):
    tensor = tiny().preprocess_image(images[0])
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32


def test_load_state_dict_file_accepts_wrapped_and_dataparallel_checkpoints(tiny, tmp_path):
    state = tiny(seed=5).model.state_dict()
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": OrderedDict((f"module.{k}", v) for k, v in state.items())}, path)
    loaded = load_state_dict_file(path)
    assert loaded.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(loaded[key], state[key])
    x = batch()
    torch.testing.assert_close(
        tiny(weights_path=path).get_output(x)["conv"], tiny(seed=5).get_output(x)["conv"]
    )


class Payload:
    """A custom class: unpickling it would need arbitrary code, so weights_only refuses it."""


def test_untrusted_checkpoint_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(
        WeightsError, match=r"evil\.pth.*Payload.*refuses to unpickle.*torch\.save\(model\.state_dict"
    ):
        load_state_dict_file(path)


class CallsAFunction:
    """Unpickling it calls os.getcwd: torch 2.14 words this refusal "unsupported GLOBAL ... whose
    module posix is blocked", not "Unsupported global: GLOBAL ..."."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_checkpoint_calling_a_blocked_function_is_refused_as_such(tmp_path):
    path = tmp_path / "reduce.pth"
    torch.save({"w": torch.zeros(1), "x": CallsAFunction()}, path)
    refused = r"reduce\.pth.*holds a Python object \(\S*getcwd\).*refuses to unpickle"
    with pytest.raises(WeightsError, match=refused):
        load_state_dict_file(path)


def test_shape_mismatch_names_every_key_and_both_shapes(tiny, tmp_path):
    path = tmp_path / "wide.pth"
    net = tiny()
    state = {k: v.clone() for k, v in net.model.state_dict().items()}
    state["fc.weight"] = torch.zeros(7, 16)
    state["fc.bias"] = torch.zeros(7)
    torch.save(state, path)
    with pytest.raises(WeightsError) as error:
        tiny(weights_path=path).check_layers()
    message = str(error.value)
    assert "size mismatch for fc.weight" in message and "[7, 16]" in message and "[5, 16]" in message
    assert "size mismatch for fc.bias" in message and "[7]" in message and "[5]" in message


def test_missing_or_mismatched_weights_are_clear_errors(tiny, tmp_path):
    with pytest.raises(WeightsError, match=r"nowhere\.pth.*does not exist"):
        load_state_dict_file(tmp_path / "nowhere.pth")
    path = tmp_path / "other.pth"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(WeightsError, match=r"other\.pth.*does not fit"):
        tiny(weights_path=path).check_layers()
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match=r"notes\.pth.*not a torch checkpoint"):
        load_state_dict_file(text)


def test_half_precision_needs_a_gpu():
    with pytest.raises(ConfigError, match="needs a GPU"):
        autocast_dtype("bf16", torch.device("cpu"))
    with pytest.raises(ConfigError, match="precision 'fp8'"):
        autocast_dtype("fp8", torch.device("cpu"))
    assert autocast_dtype("fp32", torch.device("cpu")) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_a_gpu_is_a_clear_error(tiny):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "mps")
    with pytest.raises(ConfigError, match="needs a GPU"):
        tiny(device="cpu", precision="fp16")
