"""Declarative preprocessing: the PIL path against torchvision, the batch path against the PIL path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from facebench.errors import ConfigError
from facebench.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


def photo(height: int, width: int, seed: int = 0) -> Image.Image:
    """A smooth random RGB image (noise upsampled), like a photo's local statistics."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(
        rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    )
    return small.resize((width, height), Image.Resampling.BICUBIC)


def as_uint8_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


@pytest.mark.parametrize(
    ("preprocessing", "reference"),
    [
        (
            Preprocessing(resize=256, crop=224),
            [transforms.Resize(256), transforms.CenterCrop(224)],
        ),
        (  # the original tool's Resize((224, 224)), no crop
            Preprocessing(resize=(224, 224), crop=None),
            [transforms.Resize((224, 224))],
        ),
        (
            Preprocessing(resize=40, crop=(32, 24), interpolation="bicubic"),
            [
                transforms.Resize(40, interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.CenterCrop((32, 24)),
            ],
        ),
        (
            Preprocessing(resize=None, crop=50, grayscale=True),
            [transforms.CenterCrop(50), transforms.Grayscale(3)],
        ),
    ],
)
def test_transform_is_torchvisions_pipeline(preprocessing: Preprocessing, reference: list) -> None:
    image = photo(90, 120)
    expected = transforms.Compose(
        [*reference, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )(image)
    torch.testing.assert_close(preprocessing.transform()(image), expected, rtol=0, atol=0)


@pytest.mark.parametrize(
    "preprocessing",
    [
        Preprocessing(resize=64, crop=56),
        Preprocessing(resize=(48, 40), crop=None, interpolation="bicubic"),
        Preprocessing(resize=64, crop=64, grayscale=True, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ],
)
def test_batch_path_matches_the_pil_path_to_one_grey_level(preprocessing: Preprocessing) -> None:
    images = [photo(90, 120, seed=1), photo(100, 70, seed=2)]  # different sizes in one batch
    batch = preprocessing.apply_to_batch([as_uint8_tensor(image) for image in images])
    expected = torch.stack([preprocessing.transform()(image) for image in images])
    assert batch.shape == expected.shape and batch.dtype == torch.float32
    one_level = 1 / 255 / min(preprocessing.std)
    assert (batch - expected).abs().max() <= one_level + 1e-6
    assert (batch - expected).abs().mean() < 0.05 * one_level  # nearly every pixel equal


def test_interpolations_without_a_tensor_kernel_go_through_pil_exactly() -> None:
    image = photo(60, 80)
    for mode in ("nearest", "lanczos", "box"):
        preprocessing = Preprocessing(resize=30, crop=28, interpolation=mode)
        batch = preprocessing.apply_to_batch([as_uint8_tensor(image)])
        torch.testing.assert_close(batch[0], preprocessing.transform()(image), rtol=0, atol=1e-6)


def test_batch_path_takes_grey_images_and_refuses_floats() -> None:
    grey = torch.full((1, 20, 20), 128, dtype=torch.uint8)
    out = Preprocessing(resize=None, crop=None, mean=(0, 0, 0), std=(1, 1, 1)).apply_to_batch([grey])
    torch.testing.assert_close(out, torch.full((1, 3, 20, 20), 128 / 255))
    with pytest.raises(ValueError, match="uint8"):
        Preprocessing().apply_to_batch([torch.zeros(3, 8, 8)])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resize": 0}, "resize"),
        ({"crop": "big"}, "crop"),
        ({"resize": [224, 224, 3]}, "resize"),
        ({"std": (0.2, 0.0, 0.2)}, "std must be three positive numbers"),
        ({"mean": (0.5, 0.5)}, "mean"),
        ({"interpolation": "cubic"}, "bilinear, bicubic"),
        ({"grayscale": "yes"}, "grayscale"),
    ],
)
def test_bad_fields_are_config_errors(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Preprocessing(**fields)


def test_replace_and_describe() -> None:
    changed = Preprocessing().replace(resize=[224, 224], crop=None, std=0.5)
    assert changed.resize == (224, 224) and changed.std == (0.5, 0.5, 0.5)
    assert changed.describe() == {
        "resize": [224, 224],
        "crop": None,
        "mean": list(IMAGENET_MEAN),
        "std": [0.5, 0.5, 0.5],
        "grayscale": False,
        "interpolation": "bilinear",
    }
    with pytest.raises(ConfigError, match="no field"):
        Preprocessing().replace(size=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batch_path_on_the_gpu_matches_the_pil_path() -> None:
    preprocessing = Preprocessing(resize=64, crop=56, interpolation="bicubic")
    images = [photo(90, 120, seed=3), photo(70, 100, seed=4)]
    batch = preprocessing.apply_to_batch([as_uint8_tensor(image).cuda() for image in images])
    assert batch.device.type == "cuda"
    expected = torch.stack([preprocessing.transform()(image) for image in images])
    assert (batch.cpu() - expected).abs().max() <= 1 / 255 / min(preprocessing.std) + 1e-6
