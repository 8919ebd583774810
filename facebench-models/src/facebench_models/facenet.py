"""``facenet``: FaceNet's Inception-ResNet-v1, laid out as in facenet-pytorch.

- ``arch``: ``inception_resnet_v1`` (the only one).
- ``weights_path``: facenet-pytorch's ``20180402-114759-vggface2.pt`` or
  ``20180408-102900-casia-webface.pt`` (David Sandberg's TensorFlow weights, converted); their
  ``logits.*`` classifier (8,631 or 10,575 identities) is set aside with a warning.
  ``pretrained=false``: random weights under ``seed``. facebench downloads none.
- Input: 160x160 faces (resize to 160x160, no crop), standardised as ``(x - 127.5) / 128``
  (mean 0.5, std 128/255). Align photos first (``align=mtcnn``) or give aligned crops.
- Layers: ``conv2d_1a`` ... ``conv2d_4b``, ``repeat_1.N``, ``mixed_6a``, ``repeat_2.N``,
  ``mixed_7a``, ``repeat_3.N``, ``block8``, ``avgpool_1a``, ``last_linear``, ``last_bn``; the
  final output is the L2-normalised 512-d embedding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from facebench.preprocessing import Preprocessing
from facebench_models.face_backbone import FaceBackbone
from facebench_models.facenet_net import INPUT_SIZE, InceptionResnetV1

ARCH = "inception_resnet_v1"
STANDARD_STD = 128 / 255  # facenet-pytorch's fixed_image_standardization: (x - 127.5) / 128


class FaceNetModel(FaceBackbone):
    """FaceNet's Inception-ResNet-v1 (facenet-pytorch's layout).

    Other options (``extract_layers``, ``reduction``, ``device``, ``precision``, ``seed``, ...)
    are :class:`~facebench.model.BaseModel`'s.
    """

    family: ClassVar[str] = "facenet"
    weights_hint: ClassVar[str] = "e.g. facenet-pytorch's 20180402-114759-vggface2.pt"
    alignment_template: ClassVar[str] = "facenet"

    def __init__(
        self,
        name: str | None = None,
        arch: str = ARCH,
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        **options: Any,
    ) -> None:
        """Options of the family (and BaseModel's).

        - ``arch``: ``inception_resnet_v1`` (the only one).
        - ``pretrained``: true needs ``weights_path`` (nothing is downloaded); false: random weights.
        - ``weights_path``: a local state dict or training checkpoint (a margin head in it is set aside).
        """
        super().__init__(name=name, arch=arch, pretrained=pretrained, weights_path=weights_path, **options)

    @classmethod
    def available_architectures(cls) -> list[str]:
        return [ARCH]

    def _network(self) -> torch.nn.Module:
        return InceptionResnetV1()

    def default_preprocessing(self) -> Preprocessing:
        return Preprocessing(
            resize=(INPUT_SIZE, INPUT_SIZE),
            crop=None,
            mean=(0.5, 0.5, 0.5),
            std=(STANDARD_STD, STANDARD_STD, STANDARD_STD),
        )
