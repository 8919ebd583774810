"""BaseModel options: preprocessing overrides, identity derived from the declarations."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from facebench.errors import ConfigError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing


class Widening(BaseModel):
    """A linear layer of ``width`` outputs on 8 px images."""

    non_output_options: ClassVar[frozenset[str]] = frozenset({"verbose"})

    def __init__(self, width: int = 3, verbose: bool = False, **options: Any) -> None:
        options.setdefault("device", "cpu")
        super().__init__(**options)
        self.width = width
        self.verbose = verbose

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(resize=8, crop=8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

    def _build_model(self) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, self.width))


class Forgetful(BaseModel):
    def __init__(self, depth: int = 2, **options: Any) -> None:
        super().__init__(**options)

    def _build_model(self) -> nn.Module:
        return nn.Identity()


def test_model_options_come_from_the_declarations() -> None:
    options = Widening(width=5, verbose=True, name="x", seed=3).model_options()
    assert options["width"] == 5
    assert not {"verbose", "name", "seed", "device", "resize", "extract_layers"} & set(options)
    with pytest.raises(TypeError, match=r"self\.depth = depth"):
        Forgetful().model_options()


@pytest.mark.parametrize(
    "change",
    [
        {"width": 4},
        {"resize": 10},
        {"crop": None},
        {"mean": (0.4, 0.5, 0.5)},
        {"std": (0.2, 0.2, 0.2)},
        {"grayscale": True},
        {"interpolation": "bicubic"},
        {"seed": 1},
    ],
)
def test_each_output_changing_option_changes_the_identity(change: dict[str, Any]) -> None:
    assert Widening(**change).identity != Widening().identity


def test_options_that_do_not_change_outputs_keep_the_identity() -> None:
    same = Widening(name="other", verbose=True, extract_layers=["1"], reduction="mean", resize=8)
    assert same.identity == Widening().identity  # resize=8 is the default: same preprocessing


def test_preprocessing_options_override_only_their_field() -> None:
    model = Widening(resize=[6, 10], crop=None, grayscale=True)
    assert model.preprocessing == Preprocessing(
        resize=(6, 10), crop=None, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), grayscale=True
    )
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    tensor = model.get_preprocess_function()(image)
    assert tensor.shape == (3, 6, 10)
    torch.testing.assert_close(tensor[0], tensor[2])
    assert model.batch_preprocessing == model.preprocessing


def test_preprocess_function_replaces_the_declarative_preprocessing() -> None:
    def custom(image: Image.Image) -> torch.Tensor:
        return torch.zeros(3, 8, 8)

    model = Widening(preprocess_function=custom)
    assert model.get_preprocess_function() is custom
    assert model.batch_preprocessing is None
    with pytest.raises(ConfigError, match="preprocess_function replaces the preprocessing"):
        Widening(preprocess_function=custom, resize=4)


def test_bad_preprocessing_options_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="model 'Widening': preprocessing: crop"):
        Widening(crop=-1)
