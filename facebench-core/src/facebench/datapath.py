"""How image files become a batch on the model's device: the ``cpu`` path and the ``device`` path.

- ``cpu``: DataLoader workers decode each file with PIL (EXIF orientation, every mode, see
  :mod:`facebench.images`) and run the model's preprocessing; the batch is copied to the device.
- ``device``: workers only read the file bytes (and peek at the header); the JPEGs of a batch
  are decoded together by :func:`torchvision.io.decode_jpeg` on the model's device (nvJPEG on
  CUDA), then resized, cropped and normalised there by the model's declarative
  :meth:`~facebench.preprocessing.Preprocessing.apply_to_batch`. The bytes come through pinned
  memory and decoded-on-CPU fallbacks are copied without blocking.

An image the device decoder cannot take goes through the ``cpu`` path, image by image, inside
the same batch: a file that is not a JPEG (PNG, ...), a JPEG whose pixels are not 8-bit YCbCr/RGB
(grayscale ``L``, ``CMYK``), one with an EXIF orientation other than upright, one PIL cannot
read the header of (the CPU path then names the file), and one ``decode_jpeg`` refuses.
:func:`fallback_reason` says which and why.

``auto`` picks ``device`` when the model runs on CUDA and its preprocessing is declarative (no
custom ``preprocess_function``, no PIL image step), else ``cpu``. The two paths agree to a
tolerance, not bit for bit (decoders and resampling kernels differ by about one grey level): measured
cosine distance between the two paths' embeddings stays below 1e-3 per image
(``tests/engine/test_datapath.py``). Embeddings of the ``device`` path are therefore stored
under their own identity (:func:`store_identity`) and results.json records the path used.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from facebench.errors import ConfigError
from facebench.images import ImageDataset, image_file_errors, load_rgb

if TYPE_CHECKING:
    from facebench.model import BaseModel
    from facebench.preprocessing import Preprocessing

log = logging.getLogger(__name__)

DATA_PATHS = ("auto", "cpu", "device")
EXIF_ORIENTATION = 0x0112
JPEG = "jpeg"


def declarative_preprocessing(model: BaseModel) -> Preprocessing | None:
    """The model's :class:`~facebench.preprocessing.Preprocessing`, or None when a custom
    ``preprocess_function`` or an image step (face alignment) needs PIL images on the CPU."""
    return model.batch_preprocessing


def choose_data_path(model: BaseModel, requested: str = "auto") -> str:
    """``"cpu"`` or ``"device"`` for ``model`` (see the module docstring for ``"auto"``)."""
    if requested not in DATA_PATHS:
        raise ConfigError(f"data_path {requested!r} is not one of {', '.join(DATA_PATHS)}")
    if requested == "cpu":
        return "cpu"
    declarative = declarative_preprocessing(model) is not None
    if requested == "device":
        if not declarative:
            raise ConfigError(
                f"model {model.name!r}: data_path 'device' needs declarative preprocessing "
                f"(resize/crop/mean/std options), but the model has a custom preprocess_function "
                f"or a PIL image step; use data_path 'cpu' or 'auto'"
            )
        return "device"
    return "device" if declarative and model.device.type == "cuda" else "cpu"


def store_identity(model: BaseModel, data_path: str, torch_compile: bool = False) -> str:
    """The store identity of ``model``'s embeddings made by ``data_path``: the model's identity
    for ``cpu``; for ``device`` a variant naming the decoding device type, and for a compiled
    forward (``torch_compile``) a variant of its own: their values differ in the last digits."""
    if data_path == "cpu" and not torch_compile:
        return model.identity
    text = model.identity
    if data_path != "cpu":
        text += f":data_path=device:{model.device.type}"
    if torch_compile:
        text += ":torch_compile"
    return hashlib.sha256(text.encode()).hexdigest()


def fallback_reason(data: bytes) -> str | None:
    """Why the device decoder cannot take the file ``data``, or None when it can."""
    if not data.startswith(b"\xff\xd8"):
        return "not a JPEG"
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            if image.mode != "RGB":
                return f"JPEG in mode {image.mode}"
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception as exc:  # the CPU path then raises a DataError naming the file
        return f"unreadable header ({type(exc).__name__})"
    if orientation != 1:
        return f"EXIF orientation {orientation}"
    return None


@dataclass
class EncodedBatch:
    """A batch of the ``device`` path: indices into the job, JPEG bytes, and CPU-path tensors."""

    indices: Tensor
    encoded: list[tuple[int, Tensor]] = field(default_factory=list)  # (position, uint8 bytes)
    decoded: list[tuple[int, Tensor]] = field(default_factory=list)  # (position, preprocessed)
    paths: list[str] = field(default_factory=list)
    fallbacks: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of CPU-path images

    def pin_memory(self) -> EncodedBatch:
        """Pinned copies (the DataLoader calls this with ``pin_memory=True``)."""
        return EncodedBatch(
            self.indices,
            [(i, data.pin_memory()) for i, data in self.encoded],
            [(i, tensor.pin_memory()) for i, tensor in self.decoded],
            self.paths,
            self.fallbacks,
        )


class EncodedImageDataset(Dataset[tuple[int, str, Tensor]]):
    """``(index, kind, tensor)``: ``kind`` is ``"jpeg"`` (the tensor holds the file's bytes) or
    the :func:`fallback_reason` (the image decoded and preprocessed on the CPU)."""

    def __init__(self, paths: Sequence[str | Path], preprocess: Any) -> None:
        self.paths = [Path(path) for path in paths]
        self.cpu = ImageDataset(self.paths, preprocess)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, str, Tensor]:
        path = self.paths[index]
        with image_file_errors(path):
            data = path.read_bytes()
        reason = fallback_reason(data)
        if reason is not None:
            return index, reason, self.cpu[index][1]
        return index, JPEG, torch.frombuffer(bytearray(data), dtype=torch.uint8)

    def collate(self, items: list[tuple[int, str, Tensor]]) -> EncodedBatch:
        """Items -> one :class:`EncodedBatch` (the DataLoader's ``collate_fn``)."""
        batch = EncodedBatch(torch.tensor([index for index, _, _ in items], dtype=torch.long))
        for position, (index, kind, tensor) in enumerate(items):
            batch.paths.append(str(self.paths[index]))
            if kind == JPEG:
                batch.encoded.append((position, tensor))
            else:
                batch.decoded.append((position, tensor))
                batch.fallbacks.append((batch.paths[-1], kind))
        return batch


@dataclass
class DataPath:
    """The dataset, collate function and batch assembly of one data path for one model."""

    name: str
    model: BaseModel
    channels_last: bool = False  # convert the network once, and every batch, to channels-last
    torch_compile: bool = False  # compile the network's forward in place (nn.Module.compile)
    fallbacks: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) so far

    def __post_init__(self) -> None:
        if self.channels_last:
            self.model.model.to(memory_format=torch.channels_last)
        if self.torch_compile:  # in place: layer names and per-call layer hooks keep working
            self.model.model.compile()

    def dataset(self, paths: Sequence[str | Path]) -> ImageDataset | EncodedImageDataset:
        preprocess = self.model.get_preprocess_function()
        if self.name == "cpu":
            return ImageDataset(paths, preprocess)
        return EncodedImageDataset(paths, preprocess)

    def collate_fn(self, dataset: Dataset[Any]) -> Any:
        """The DataLoader's ``collate_fn`` (None: PyTorch's default)."""
        return dataset.collate if isinstance(dataset, EncodedImageDataset) else None

    def to_device(self, item: Any) -> tuple[Tensor, Tensor]:
        """A collated item -> ``(indices, (B, C, H, W) float batch on the model's device)``."""
        if isinstance(item, EncodedBatch):
            indices, batch = item.indices, assemble(item, declarative_preprocessing(self.model), self.model)
            for path, reason in item.fallbacks:
                log.info("model %s: %s took the CPU path (%s)", self.model.name, path, reason)
            self.fallbacks += item.fallbacks
        else:
            indices, batch = item[0], item[1].to(self.model.device, non_blocking=True)
        if self.channels_last and batch.ndim == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return indices, batch

    def load(self, paths: Sequence[str | Path], threads: int = 1) -> Tensor:
        """The batch of ``paths`` on the model's device, read (and decoded) in this process, on
        ``threads`` threads (PIL and file reads release the GIL)."""
        dataset = self.dataset(paths)
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                items = list(pool.map(dataset.__getitem__, range(len(paths))))
        else:
            items = [dataset[i] for i in range(len(paths))]
        collate = self.collate_fn(dataset)
        if collate is None:
            from torch.utils.data import default_collate

            return self.to_device(default_collate(items))[1]
        return self.to_device(collate(items))[1]


def assemble(batch: EncodedBatch, preprocessing: Preprocessing | None, model: BaseModel) -> Tensor:
    """Decode the batch's JPEGs together on the model's device, preprocess them there, and put
    them and the CPU-path tensors back in their positions."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if preprocessing is None:
        raise ConfigError(f"model {model.name!r}: the device data path needs declarative preprocessing")
    device = model.device
    parts: list[tuple[int, Tensor]] = []
    if batch.encoded:
        positions = [position for position, _ in batch.encoded]
        try:
            images = decode_jpeg([data for _, data in batch.encoded], mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one file nvJPEG refuses fails the whole call: decode one by one
            images = [_decode_one(data, batch.paths[position], model) for position, data in batch.encoded]
        on_device = [image for image in images if image.dtype == torch.uint8]
        if on_device:
            prepared = iter(preprocessing.apply_to_batch(on_device))
        parts += [
            (position, next(prepared) if image.dtype == torch.uint8 else image.to(device, non_blocking=True))
            for position, image in zip(positions, images, strict=True)
        ]
    parts += [(position, tensor.to(device, non_blocking=True)) for position, tensor in batch.decoded]
    parts.sort(key=lambda part: part[0])
    return torch.stack([tensor for _, tensor in parts])


def _decode_one(data: Tensor, path: str, model: BaseModel) -> Tensor:
    """One JPEG decoded on the device (uint8), or, if the decoder refuses it, the CPU path's
    preprocessed float tensor (on the CPU)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=model.device)
    except RuntimeError:
        return model.get_preprocess_function()(load_rgb(path))


__all__ = [
    "DATA_PATHS",
    "DataPath",
    "EncodedBatch",
    "EncodedImageDataset",
    "assemble",
    "choose_data_path",
    "declarative_preprocessing",
    "fallback_reason",
    "store_identity",
]
