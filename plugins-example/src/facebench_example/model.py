"""``dlib-resnet``: dlib's face-recognition ResNet as a facebench model, fully offline."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from facebench.errors import DataError, WeightsError
from facebench.model import BaseModel, PreprocessFunction
from facebench_example.dlib_resnet import CHIP_SIZE, DlibFaceResNet, default_weights_path


class DlibChipPreprocess:
    """PIL image -> ``(3, 150, 150)`` float tensor of 0-255 RGB values (the network normalises).

    With ``align=True`` the face is found and aligned first (:class:`FaceAligner`); otherwise
    the image should already be a dlib-style aligned chip, and any other size is centre-cropped
    to a square and resized to 150x150.
    """

    def __init__(self, align: bool = False) -> None:
        self.align = align

    @property
    def preprocess_id(self) -> str:
        return f"dlib-chip:size={CHIP_SIZE},align={'mtcnn-5point' if self.align else 'none'}"

    @cached_property
    def aligner(self) -> Any:
        from facebench_example.alignment import FaceAligner

        return FaceAligner(size=CHIP_SIZE)

    def __call__(self, image: Image.Image) -> Tensor:
        image = image.convert("RGB")
        if self.align:
            source = getattr(image, "filename", "") or f"a {image.width}x{image.height} image"
            image = self.aligner.align(image, source=str(source))
        elif image.size != (CHIP_SIZE, CHIP_SIZE):
            image = ImageOps.fit(image, (CHIP_SIZE, CHIP_SIZE), Image.Resampling.BILINEAR)
        return torch.from_numpy(np.asarray(image, dtype=np.float32).copy()).permute(2, 0, 1).contiguous()


class DlibResNet(BaseModel):
    """dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``), in PyTorch.

    Weights: the ``.dat`` file of the ``face_recognition_models`` package, or ``weights_path``.
    Inputs: 150x150 aligned face chips, or any photo with ``align=True`` (needs facenet-pytorch).
    The final output is dlib's 128-d descriptor; dlib calls two faces the same person when the
    euclidean distance between descriptors is below 0.6.
    """

    default_reduction: ClassVar[str] = "flatten"

    def __init__(
        self,
        name: str | None = None,
        weights_path: str | Path | None = None,
        align: bool = False,
        **options: Any,
    ) -> None:
        """``align`` and BaseModel's options (``extract_layers``, ``reduction``, ``device``, ...)."""
        self.align = bool(align)
        super().__init__(
            name=name or "dlib-resnet",
            weights_path=weights_path if weights_path is not None else default_weights_path(),
            **options,
        )

    def _build_model(self) -> torch.nn.Module:
        if self.weights_path is None:
            raise WeightsError(
                f"model {self.name!r}: dlib's weights were not found. Install them with "
                f"`pip install face_recognition_models`, or pass "
                f"weights_path=/path/to/dlib_face_recognition_resnet_model_v1.dat"
            )
        return DlibFaceResNet.from_dlib_file(self.weights_path)

    def _default_preprocess(self) -> PreprocessFunction:
        return DlibChipPreprocess(align=self.align)

    def model_options(self) -> dict[str, Any]:
        return {"align": self.align}

    def preprocess_image(self, path: str | Path) -> Tensor:
        try:
            return super().preprocess_image(path)
        except DataError as exc:
            if str(path) in str(exc):
                raise
            raise DataError(f"{path}: {exc}") from None
