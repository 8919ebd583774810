"""The device data path (bytes read by workers, JPEGs decoded in batches with decode_jpeg,
preprocessing applied to the batch) against the CPU path (PIL), on the CPU: same embeddings to
a cosine distance < 1e-3 per image, same task metrics to 1e-3, and per-image fallbacks."""

from __future__ import annotations

import io
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

from facebench.datapath import (
    EncodedImageDataset,
    choose_data_path,
    fallback_reason,
    store_identity,
)
from facebench.demo import DEMO_TASKS, write_stimuli
from facebench.engine import embed_images
from facebench.errors import ConfigError
from facebench.manager import MultiModelTaskManager
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench.store import EmbeddingStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
TOLERANCE = 1e-3  # the documented tolerance between the two paths


class ConvNet(BaseModel):
    """Four conv blocks (random weights) on 56 px crops: flattened block 2 and a linear head."""

    default_layers = ("block2", "head")

    def __init__(self, **options) -> None:
        options.setdefault("device", "cpu")
        super().__init__(**options)

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(resize=64, crop=56)

    def _build_model(self) -> nn.Module:
        def block(channels_in: int, channels_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
            )

        return nn.Sequential(
            OrderedDict(
                block1=block(3, 16),
                block2=block(16, 32),
                block3=block(32, 64),
                block4=block(64, 64),
                pool=nn.AdaptiveAvgPool2d(1),
                flat=nn.Flatten(),
                head=nn.Linear(64, 32),
            )
        )


def _jpeg(image: Image.Image, path: Path, **save: object) -> Path:
    image.save(path, format="JPEG", quality=90, **save)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """LFW-sized (250 x 250) JPEGs: crops of a photograph and of the demo faces."""
    folder = tmp_path_factory.mktemp("photos")
    hopper = Image.open(FIXTURES / "grace_hopper.jpg").convert("RGB")
    paths = []
    for i, (left, top, size) in enumerate([(0, 0, 512), (60, 20, 400), (150, 120, 250), (30, 200, 300)]):
        crop = hopper.crop((left, top, left + size, top + size)).resize((250, 250), Image.BICUBIC)
        paths.append(_jpeg(crop, folder / f"hopper{i}.jpg"))
    paths.append(_jpeg(hopper.resize((250, 293), Image.BICUBIC), folder / "hopper_tall.jpg"))
    stimuli = write_stimuli(folder / "demo", identities=2, views=2)
    for png in sorted(stimuli.images.rglob("*.png"))[:5]:
        paths.append(
            _jpeg(Image.open(png).convert("RGB").resize((250, 250), Image.BICUBIC), png.with_suffix(".jpg"))
        )
    return paths


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files the device decoder does not take, each with why."""
    folder = tmp_path_factory.mktemp("odd")
    hopper = Image.open(FIXTURES / "grace_hopper.jpg").convert("RGB").resize((120, 140))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    hopper.save(folder / "photo.png")
    return {
        "not a JPEG": folder / "photo.png",
        "JPEG in mode L": _jpeg(hopper.convert("L"), folder / "grey.jpg"),
        "JPEG in mode CMYK": _jpeg(hopper.convert("CMYK"), folder / "cmyk.jpg"),
        "EXIF orientation 6": _jpeg(hopper, folder / "rotated.jpg", exif=exif),
    }


def _cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return 1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_device_path_embeddings_match_the_cpu_path(photos: list[Path], interpolation: str) -> None:
    with EmbeddingStore(None) as store:
        cpu = embed_images(
            ConvNet(interpolation=interpolation),
            photos,
            store=store,
            batch_size=4,
            num_workers=0,
            data_path="cpu",
        )
        device = embed_images(
            ConvNet(interpolation=interpolation),
            photos,
            store=store,
            batch_size=4,
            num_workers=0,
            data_path="device",
        )
        assert (cpu.data_path, device.data_path) == ("cpu", "device")
        assert cpu.identity != device.identity  # the values differ, so the store keeps them apart
        assert device.computed == len(photos)
        for layer in ("block2", "head"):
            a, b = cpu.vectors(layer, photos), device.vectors(layer, photos)
            assert not np.array_equal(a, b)  # two different decoders and kernels really ran
            distances = _cosine_distances(a, b)
            assert distances.max() < TOLERANCE, dict(zip(map(str, photos), distances, strict=True))


def test_fallback_reasons(photos: list[Path], odd_files: dict[str, Path]) -> None:
    assert fallback_reason(photos[0].read_bytes()) is None
    for reason, path in odd_files.items():
        assert fallback_reason(path.read_bytes()) == reason
    assert fallback_reason(b"\xff\xd8 truncated") is not None


def test_fallback_images_go_through_the_cpu_path_inside_a_device_batch(
    photos: list[Path], odd_files: dict[str, Path]
) -> None:
    paths = [photos[0], *odd_files.values(), photos[1]]
    model = ConvNet()
    dataset = EncodedImageDataset(paths, model.get_preprocess_function())
    batch = dataset.collate([dataset[i] for i in range(len(paths))])
    assert [reason for _, reason in batch.fallbacks] == list(odd_files)
    assert [position for position, _ in batch.encoded] == [0, len(paths) - 1]
    with EmbeddingStore(None) as store:
        cpu = embed_images(ConvNet(), paths, store=store, batch_size=8, num_workers=0, data_path="cpu")
        device = embed_images(ConvNet(), paths, store=store, batch_size=8, num_workers=0, data_path="device")
        odd = list(odd_files.values())
        for layer in ("block2", "head"):
            # the fallbacks took the CPU path: same preprocessing, same values
            np.testing.assert_allclose(
                device.vectors(layer, odd), cpu.vectors(layer, odd), rtol=1e-5, atol=1e-6
            )
            assert (
                _cosine_distances(device.vectors(layer, paths), cpu.vectors(layer, paths)).max() < TOLERANCE
            )
    rotated = model.get_preprocess_function()(Image.open(odd_files["EXIF orientation 6"]).convert("RGB"))
    assert not torch.equal(rotated, model.preprocess_image(odd_files["EXIF orientation 6"]))  # EXIF applied


def test_task_metrics_agree_between_the_paths(tmp_path: Path) -> None:
    """Every demo task on JPEG stimuli: each metric within 1e-3 between the two paths."""
    from facebench.registry import get_registry

    stimuli = write_stimuli(tmp_path / "stimuli", identities=5, views=3)
    for png in stimuli.images.rglob("*.png"):
        _jpeg(Image.open(png).convert("RGB").resize((250, 250), Image.BICUBIC), png.with_suffix(".jpg"))
    registry = get_registry()
    performances = {}
    for data_path in ("cpu", "device"):
        tasks = []
        for plugin, name, key, options in DEMO_TASKS:
            pairs = pd.read_csv(stimuli.pairs[key])
            for column in ("img1", "img2"):
                pairs[column] = pairs[column].str.replace(".png", ".jpg")
            jpeg_pairs = tmp_path / f"{key}.csv"
            pairs.to_csv(jpeg_pairs, index=False)
            tasks.append(
                registry.create(
                    "task",
                    plugin,
                    name=name,
                    pairs_file_path=jpeg_pairs,
                    images_path=stimuli.images,
                    **options,
                )
            )
        with MultiModelTaskManager(
            [ConvNet(name="net")],
            tasks,
            batch_size=8,
            cache_dir=None,
            num_workers=0,
            progress=False,
            data_path=data_path,
        ) as manager:
            assert not manager.run_all_tasks_all_models(export_path=tmp_path / data_path, plots=False)
            assert manager.data_paths == {"net": data_path}
            settings = json.loads((tmp_path / data_path / "results.json").read_text())["settings"]
            assert settings["data_paths"] == {"net": data_path}
            assert settings["executor"] == {"name": "local", "decoding_workers": {"net": 0}}  # num_workers=0
            performances[data_path] = {
                name: frame.copy() for name, frame in manager.tasks_performance_dfs.items()
            }
    compared = 0
    for name, cpu_frame in performances["cpu"].items():
        device_frame = performances["device"][name]
        numeric = cpu_frame.select_dtypes("number").columns
        np.testing.assert_allclose(device_frame[numeric], cpu_frame[numeric], atol=TOLERANCE, rtol=0)
        compared += cpu_frame[numeric].notna().to_numpy().sum()
    assert compared >= 10


def test_choosing_the_data_path() -> None:
    model = ConvNet()
    assert choose_data_path(model) == "cpu"  # auto: device only for CUDA models
    assert choose_data_path(model, "device") == "device"
    assert store_identity(model, "cpu") == model.identity != store_identity(model, "device")
    custom = ConvNet(preprocess_function=Preprocessing(resize=64, crop=56).transform())
    assert choose_data_path(custom, "auto") == "cpu"
    with pytest.raises(ConfigError, match="custom preprocess_function"):
        choose_data_path(custom, "device")
    with pytest.raises(ConfigError, match="not one of"):
        choose_data_path(model, "gpu")


def test_decoding_batches_of_bytes_is_what_pil_decodes(photos: list[Path]) -> None:
    """decode_jpeg on a list of byte tensors gives the pixels PIL gives (both libjpeg here)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    data = [torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8) for path in photos[:3]]
    decoded = decode_jpeg(data, mode=ImageReadMode.RGB)
    for path, image in zip(photos[:3], decoded, strict=True):
        pil = torch.from_numpy(np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))).permute(
            2, 0, 1
        )
        assert (image.int() - pil.int()).abs().max() <= 2


def test_channels_last_gives_the_same_embeddings(photos: list[Path]) -> None:
    options = {"batch_size": 4, "num_workers": 0, "progress": False}
    with EmbeddingStore(None) as store_a, EmbeddingStore(None) as store_b:
        plain = embed_images(ConvNet(), photos, store=store_a, **options)
        model = ConvNet()
        fast = embed_images(model, photos, store=store_b, channels_last=True, **options)
        assert model.model.block1[0].weight.is_contiguous(memory_format=torch.channels_last)
        for layer in ("block2", "head"):
            np.testing.assert_allclose(
                fast.vectors(layer, photos), plain.vectors(layer, photos), rtol=1e-4, atol=1e-5
            )


def test_a_compiled_forward_gives_the_same_embeddings_under_its_own_identity(photos: list[Path]) -> None:
    """torch_compile compiles the network in place: the layer hooks still capture every batch,
    values agree with the eager forward to float rounding, and they are stored apart from it."""
    options = {"batch_size": 4, "num_workers": 0, "progress": False}
    with EmbeddingStore(None) as store:
        plain = embed_images(ConvNet(), photos[:8], store=store, **options)
        model = ConvNet()
        compiled = embed_images(model, photos[:8], store=store, torch_compile=True, **options)
        assert getattr(model.model, "_compiled_call_impl", None) is not None
        assert compiled.identity != plain.identity  # its values differ in the last digits
        assert compiled.computed == 8  # nothing was served from the eager forward's cache
        for layer in ("block2", "head"):
            np.testing.assert_allclose(
                compiled.vectors(layer, photos[:8]), plain.vectors(layer, photos[:8]), rtol=1e-4, atol=1e-5
            )


def test_loading_a_batch_on_threads_gives_the_same_batch(
    photos: list[Path], odd_files: dict[str, Path]
) -> None:
    from facebench.datapath import DataPath

    paths = [*photos[:3], *odd_files.values()]
    for name in ("cpu", "device"):
        data = DataPath(name, ConvNet())
        assert torch.equal(data.load(paths, threads=3), data.load(paths))
    assert [reason for _, reason in data.fallbacks] == 2 * list(odd_files)  # listed, batch by batch
