"""Declarative image preprocessing: resize, centre crop, optional grey, normalise.

A model says what its weights were trained with by returning a :class:`Preprocessing` from
:meth:`facebench.model.BaseModel.default_preprocessing`; users change any field with the model
options of the same names (``resize``, ``crop``, ``mean``, ``std``, ``grayscale``,
``interpolation``). The same description runs two ways:

- :meth:`Preprocessing.transform`: PIL image -> ``(C, H, W)`` float tensor, with torchvision's
  PIL transforms (the CPU path);
- :meth:`Preprocessing.apply_to_batch`: decoded ``uint8`` ``(C, H, W)`` tensors on any device ->
  one ``(B, C, H, W)`` float tensor, with torchvision's tensor kernels (the GPU path). It resizes
  the ``uint8`` pixels with antialiasing and rounds back to ``uint8`` like PIL does, so it agrees
  with :meth:`transform` to about one grey level (``nearest``, ``lanczos`` and ``box`` have no
  tensor kernel that picks the same pixels as PIL: those images go through PIL on the CPU).

Order: resize, centre crop (zero-padded when the image is smaller), grey (ITU-R 601-2 luma,
copied to three channels), scale to 0-1, normalise with ``mean``/``std``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from facebench.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "nearest", "lanczos", "box")
TENSOR_INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic")
FIELDS: tuple[str, ...] = ("resize", "crop", "mean", "std", "grayscale", "interpolation")

Size = int | tuple[int, int] | None


class ModelDefault:
    """The value of a preprocessing option left unset: the model's own default is used."""

    def __repr__(self) -> str:
        return "model's default"


MODEL_DEFAULT: Any = ModelDefault()


@dataclass(frozen=True)
class Preprocessing:
    """What a model's input images go through; every field is checked when it is made.

    - ``resize``: an int resizes the shorter side to it (aspect kept); ``(H, W)`` resizes to
      exactly that (``Resize((224, 224))``); None keeps the size.
    - ``crop``: a centre crop of that size (int: square, or ``(H, W)``); None: no crop.
    - ``mean``/``std``: per-channel normalisation of the 0-1 RGB values.
    - ``grayscale``: convert to grey (three equal channels) before normalising.
    - ``interpolation``: one of :data:`INTERPOLATIONS`.
    """

    resize: Size = 224
    crop: Size = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    grayscale: bool = False
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        object.__setattr__(self, "resize", _size(self.resize, "resize"))
        object.__setattr__(self, "crop", _size(self.crop, "crop"))
        object.__setattr__(self, "mean", _triple(self.mean, "mean", positive=False))
        object.__setattr__(self, "std", _triple(self.std, "std", positive=True))
        if not isinstance(self.grayscale, bool):
            raise ConfigError(f"preprocessing: grayscale must be true or false, not {self.grayscale!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"preprocessing: interpolation {self.interpolation!r} is not one of "
                f"{', '.join(INTERPOLATIONS)}"
            )

    def replace(self, **changes: Any) -> Preprocessing:
        """A copy with some fields changed (checked like a new one)."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ConfigError(
                f"preprocessing has no field(s) {', '.join(unknown)}; fields: {', '.join(FIELDS)}"
            )
        return replace(self, **changes)

    # ----------------------------------------------------------------- CPU path
    def transform(self) -> Callable[[Image.Image], Tensor]:
        """PIL image -> ``(C, H, W)`` float tensor, with torchvision's PIL transforms."""
        from torchvision import transforms

        mode = transforms.InterpolationMode(self.interpolation)
        steps: list[Any] = []
        if self.resize is not None:
            steps.append(transforms.Resize(self.resize, interpolation=mode, antialias=True))
        if self.crop is not None:
            steps.append(transforms.CenterCrop(self.crop))
        if self.grayscale:
            steps.append(transforms.Grayscale(num_output_channels=3))
        steps += [transforms.ToTensor(), transforms.Normalize(mean=self.mean, std=self.std)]
        return transforms.Compose(steps)

    # ----------------------------------------------------------------- batch (GPU) path
    def apply_to_batch(self, images: Sequence[Tensor]) -> Tensor:
        """Decoded ``uint8`` ``(C, H, W)`` RGB tensors (any sizes, any one device) -> one
        ``(B, C, H, W)`` float32 tensor on that device, as :meth:`transform` would give."""
        import torch
        from torchvision.transforms.v2 import functional as F

        if len(images) == 0:
            raise ValueError("apply_to_batch needs at least one image")
        prepared = []
        for image in images:
            if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
                raise ValueError(
                    f"apply_to_batch takes uint8 (C, H, W) tensors with 1 or 3 channels; got "
                    f"{image.dtype} {tuple(image.shape)}"
                )
            if image.shape[0] == 1:
                image = image.expand(3, -1, -1)
            if self.interpolation not in TENSOR_INTERPOLATIONS and self.resize is not None:
                prepared.append(self._through_pil(image))
                continue
            if self.resize is not None:
                size, mode = _as_list(self.resize), _mode(self.interpolation)
                image = F.resize(image, size, interpolation=mode, antialias=True)
            if self.crop is not None:
                image = F.center_crop(image, _as_list(self.crop))
            if self.grayscale:
                image = _grey_uint8(image)
            prepared.append(image.float().div_(255.0))
        batch = torch.stack(prepared)
        mean = torch.tensor(self.mean, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=batch.dtype, device=batch.device).view(1, 3, 1, 1)
        return batch.sub_(mean).div_(std)

    def _through_pil(self, image: Tensor) -> Tensor:
        """Resize, crop and grey one image on the CPU with PIL; the 0-1 float result on its device."""
        from torchvision.transforms.functional import to_pil_image

        unnormalised = replace(self, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)).transform()
        return unnormalised(to_pil_image(image.cpu())).to(image.device)

    # ----------------------------------------------------------------- description
    def describe(self) -> dict[str, Any]:
        """The fields as JSON values (lists for tuples): for identity and provenance."""
        return {
            "resize": _json_size(self.resize),
            "crop": _json_size(self.crop),
            "mean": list(self.mean),
            "std": list(self.std),
            "grayscale": self.grayscale,
            "interpolation": self.interpolation,
        }


def _mode(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(name)


def _grey_uint8(image: Tensor) -> Tensor:
    """PIL's ``convert("L")`` on a uint8 ``(3, H, W)`` tensor (rounded ITU-R 601-2), as 3 channels."""
    import torch

    weights = torch.tensor([0.299, 0.587, 0.114], device=image.device).view(3, 1, 1)
    grey = (image.float() * weights).sum(dim=0, keepdim=True).round_().clamp_(0, 255).to(torch.uint8)
    return grey.expand(3, -1, -1)


def _as_list(size: int | tuple[int, int]) -> list[int]:
    return [size] if isinstance(size, int) else list(size)


def _json_size(size: Size) -> int | list[int] | None:
    return list(size) if isinstance(size, tuple) else size


def _size(value: Any, what: str) -> Size:
    """None, a positive int, or a pair of positive ints (a list becomes a tuple)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise ConfigError(
        f"preprocessing: {what} must be a positive number of pixels, [height, width], or none; not {value!r}"
    )


def _triple(value: Any, what: str, positive: bool) -> tuple[float, float, float]:
    """Three finite floats (positive ones for ``std``); one number means the same for each channel."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = (value, value, value)
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 3
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        and (not positive or all(v > 0 for v in value))
    ):
        return (float(value[0]), float(value[1]), float(value[2]))
    rule = "three positive numbers" if positive else "three numbers"
    raise ConfigError(f"preprocessing: {what} must be {rule} (one per RGB channel), not {value!r}")


__all__ = [
    "FIELDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "MODEL_DEFAULT",
    "ModelDefault",
    "Preprocessing",
]
