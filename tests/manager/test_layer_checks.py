"""Layers are checked before any model runs: an unknown one is exit 2 (read on the meta device),
and a module run twice in one forward pass is refused, naming its calls, as `layers` marks it."""

from __future__ import annotations

import pytest
import torch
import torchvision
from click.testing import CliRunner

from facebench.cli import main
from facebench.errors import ConfigError, UnknownNameError
from facebench.manager import MultiModelTaskManager
from facebench.model import BaseModel
from facebench_tasks.accuracy import AccuracyTask


class RandomResNet18(BaseModel):
    """torchvision's ResNet-18 with random weights; counts forward passes."""

    image_size = 32

    def __init__(self, **options) -> None:
        options.setdefault("device", "cpu")
        super().__init__(**options)
        self.forward_calls = 0

    def _build_model(self) -> torch.nn.Module:
        return torchvision.models.resnet18(weights=None, num_classes=10)

    def _forward(self, tensor: torch.Tensor) -> torch.Tensor:
        self.forward_calls += 1
        return self.model(tensor)


def test_unknown_layer_is_refused_before_any_model_runs_and_exits_2(
    use_registry, stimuli, tmp_path, tiny_net
) -> None:
    task = AccuracyTask(pairs_file_path=stimuli.pairs["verification"], images_path=stimuli.images, n_folds=2)
    model = RandomResNet18(extract_layers=["layer1.0.conv1", "layer9"])
    manager = MultiModelTaskManager([model], [task], cache_dir=None, progress=False)
    with manager, pytest.raises(UnknownNameError, match=r"unknown layer 'layer9'"):
        manager.run_all_tasks_all_models(tmp_path / "out")
    assert model.forward_calls == 0 and model._model is None  # read on the meta device only
    assert not (tmp_path / "out").exists()

    result = CliRunner().invoke(
        main,
        [
            "run",
            "--model",
            "tiny",
            "--layers",
            "fc,nope",
            "--task",
            "accuracy:n_folds=2",
            "--pairs",
            str(stimuli.pairs["verification"]),
            "--images",
            str(stimuli.images),
            "--quiet",
            "--no-cache",
            "--output",
            str(tmp_path / "cli"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "unknown layer 'nope'" in result.output
    assert tiny_net.constructed == 1  # built on the meta device only, never run


def test_a_reused_module_is_refused_before_any_model_runs(stimuli, tmp_path) -> None:
    task = AccuracyTask(pairs_file_path=stimuli.pairs["verification"], images_path=stimuli.images, n_folds=2)
    model = RandomResNet18(extract_layers=["layer2.1.relu"])
    manager = MultiModelTaskManager([model], [task], cache_dir=None, progress=False)
    with manager, pytest.raises(ConfigError, match=r"'layer2.1.relu' runs 2 times in one forward pass"):
        manager.run_all_tasks_all_models(tmp_path / "out")
    assert model.forward_calls == 0 and model._model is None  # traced on the meta device


def test_a_module_called_twice_in_a_forward_pass_is_refused_naming_its_calls() -> None:
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError) as error:
        RandomResNet18(extract_layers=["layer1.0.relu"]).get_output(images)
    message = str(error.value)
    assert "'layer1.0.relu' runs 2 times in one forward pass" in message
    assert "call 1 after layer1.0.bn1, call 2 after layer1.0.bn2" in message
    assert "its parent 'layer1.0' gives the output of the last call" in message
    # a layer that runs once, and the block whose output is the relu's last call, are extracted
    model = RandomResNet18(extract_layers=["layer1.0.bn1", "layer1.0"])
    out = model.get_output(images)
    block = model.model.layer1[0]
    x = model.model.maxpool(model.model.relu(model.model.bn1(model.model.conv1(images))))
    torch.testing.assert_close(out["layer1.0"], block(x).flatten(1))


def test_layers_command_marks_the_same_layers_the_run_refuses() -> None:
    result = CliRunner().invoke(main, ["layers", "torchvision:arch=resnet18,pretrained=false"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    marked = {line.split()[0] for line in lines if "runs 2 times per forward pass" in line}
    reused = {name for name, _ in torchvision.models.resnet18().named_modules() if name.endswith(".relu")}
    assert marked == reused  # every block's relu, and nothing else (the stem's relu runs once)
    names = [line.split()[0] for line in lines]
    assert "layer1.0.bn1" in names and "fc" in names
