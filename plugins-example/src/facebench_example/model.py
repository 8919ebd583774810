"""``dlib-resnet``: dlib's face-recognition ResNet as a facebench model, fully offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from facebench.errors import DataError, WeightsError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing
from facebench_example.dlib_resnet import CHIP_SIZE, DlibFaceResNet, default_weights_path


class DlibResNet(BaseModel):
    """dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``), in PyTorch.

    Weights: the ``.dat`` file of the ``face_recognition_models`` package, or ``weights_path``.
    Inputs: 150x150 aligned face chips (other sizes: the shorter side is resized to 150 and the
    centre cropped), or any photo with ``align=mtcnn`` (or ``align=true``: the core's MTCNN
    alignment to dlib's chip, with the weights shipped in facebench-core).
    The final output is dlib's 128-d descriptor; dlib calls two faces the same person when the
    euclidean distance between descriptors is below 0.6.
    """

    default_reduction: ClassVar[str] = "flatten"
    alignment_template: ClassVar[str] = "dlib"  # align=mtcnn: the core's MTCNN alignment to dlib's chip

    def __init__(
        self,
        name: str | None = None,
        weights_path: str | Path | None = None,
        align: bool | Literal["none", "mtcnn"] = False,
        **options: Any,
    ) -> None:
        """``align`` and BaseModel's options (``extract_layers``, ``reduction``, ``device``, ...).

        - ``align``: mtcnn (or true) finds and aligns the face first (MTCNN landmarks), for
          photos; none (or false) for chips.
        """
        super().__init__(
            align=align,
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
        return DlibFaceResNet.from_dlib_file(self.read_file(self.weights_path))

    def default_preprocessing(self) -> Preprocessing:
        """A 150x150 chip (shorter side resized, centre crop) of 0-255 RGB values: the network
        normalises them itself, as dlib's input layer does."""
        return Preprocessing(resize=CHIP_SIZE, crop=CHIP_SIZE, mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3)

    def preprocess_image(self, path: str | Path) -> Tensor:
        try:
            return super().preprocess_image(path)
        except DataError as exc:
            if str(path) in str(exc):
                raise
            raise DataError(f"{path}: {exc}") from None
