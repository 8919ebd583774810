"""``iresnet``: the ArcFace / insightface face-recognition IResNets (iresnet18 ... iresnet200).

- ``arch``: ``iresnet18``, ``iresnet34``, ``iresnet50``, ``iresnet100``, ``iresnet200``.
- ``weights_path``: a ``backbone.pth`` of insightface's ``arcface_torch`` model zoo (ArcFace,
  CosFace, PartialFC; MagFace and AdaFace IResNets use the same names) — a state dict, or a
  training checkpoint whose margin head is set aside with a warning. ``pretrained=false``:
  random weights under ``seed``. facebench downloads none.
- Input: 112x112 aligned faces (resize to 112x112, no crop), pixels scaled to [-1, 1]
  (mean = std = 0.5). Align photos first (``align=mtcnn``) or give aligned crops.
- Layers: ``conv1``, ``bn1``, ``prelu``, ``layerS`` / ``layerS.B`` (stages 1-4, blocks),
  ``bn2``, ``fc``, ``features``; the final output is the 512-d embedding (``features``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.preprocessing import Preprocessing
from facebench_models.face_backbone import FaceBackbone
from facebench_models.iresnet_net import DEPTHS, INPUT_SIZE, iresnet


class IResNetModel(FaceBackbone):
    """An insightface IResNet; ``iresnet50`` by default.

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    family: ClassVar[str] = "iresnet"
    weights_hint: ClassVar[str] = "e.g. the backbone.pth files of insightface's arcface_torch model zoo"
    alignment_template: ClassVar[str] = "arcface"

    def __init__(
        self,
        name: str | None = None,
        arch: str = "iresnet50",
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        """Options of the family (and BaseModel's).

        - ``arch``: ``iresnet18``, ``iresnet34``, ``iresnet50``, ``iresnet100`` or ``iresnet200``.
        - ``pretrained``: true needs ``weights_path`` (nothing is downloaded); false: random weights.
        - ``weights_path``: a local state dict or training checkpoint (a margin head in it is set aside).
        """
        super().__init__(name=name, arch=arch, pretrained=pretrained, weights_path=weights_path, **options)

    @classmethod
    def available_architectures(cls) -> list[str]:
        return list(DEPTHS)

    def _network(self) -> torch.nn.Module:
        return iresnet(self.arch)

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(
            resize=(INPUT_SIZE, INPUT_SIZE), crop=None, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)
        )
