"""Inception-ResNet-v1 (Szegedy et al. 2017), the FaceNet backbone (Schroff et al. 2015) with
the module names of facenet-pytorch, written from the paper and that public layout so its
VGGFace2 and CASIA-WebFace state dicts load unchanged. Input: 160x160 faces standardised as
``(x - 127.5) / 128``.

Every convolution of the stem and the branches is conv (no bias) -> BN (eps 0.001) -> ReLU
(a ``BasicConv2d``). Stages at 160 px input: stem to 256 x 8 x 8 (``conv2d_1a`` .. ``conv2d_4b``),
5 x Inception-ResNet-A (``repeat_1``, residual scale 0.17), reduction-A (``mixed_6a``,
896 x 3 x 3), 10 x Inception-ResNet-B (``repeat_2``, 0.10), reduction-B (``mixed_7a``, 1792 x 1 x 1),
5 x Inception-ResNet-C (``repeat_3``, 0.20) and one without ReLU (``block8``), average pool,
``last_linear`` (1792 -> 512, no bias), ``last_bn``; the embedding is L2-normalised.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional

BN_EPS = 1e-3
BN_MOMENTUM = 0.1
INPUT_SIZE = 160
EMBEDDING_SIZE = 512


class BasicConv2d(nn.Sequential):
    """conv (no bias) -> batch norm -> ReLU, named ``conv``, ``bn``, ``relu``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()


class InceptionResidual(nn.Module):
    """Concatenated branches -> 1x1 conv (``conv2d``, with bias) -> ``x + scale * that`` -> ReLU."""

    def __init__(
        self, branches: list[nn.Module], branch_channels: int, channels: int, scale: float, relu: bool
    ):
        super().__init__()
        for index, branch in enumerate(branches):
            self.add_module(f"branch{index}", branch)
        self.conv2d = nn.Conv2d(branch_channels, channels, 1)
        self.scale = scale
        self.relu = nn.ReLU() if relu else None
        self._count = len(branches)

    def forward(self, x: Tensor) -> Tensor:
        branches = [getattr(self, f"branch{index}")(x) for index in range(self._count)]
        out = self.conv2d(torch.cat(branches, dim=1)) * self.scale + x
        return out if self.relu is None else self.relu(out)


def block35(scale: float = 0.17) -> InceptionResidual:
    """Inception-ResNet-A on 256 channels: 1x1 | 1x1, 3x3 | 1x1, 3x3, 3x3 (32 each)."""
    return InceptionResidual(
        [
            BasicConv2d(256, 32, 1),
            nn.Sequential(BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1)),
            nn.Sequential(
                BasicConv2d(256, 32, 1), BasicConv2d(32, 32, 3, padding=1), BasicConv2d(32, 32, 3, padding=1)
            ),
        ],
        96,
        256,
        scale,
        relu=True,
    )


def block17(scale: float = 0.10) -> InceptionResidual:
    """Inception-ResNet-B on 896 channels: 1x1 | 1x1, 1x7, 7x1 (128 each)."""
    return _factorised_block(896, 128, 7, scale, relu=True)


def block8(scale: float = 0.20, relu: bool = True) -> InceptionResidual:
    """Inception-ResNet-C on 1792 channels: 1x1 | 1x1, 1x3, 3x1 (192 each)."""
    return _factorised_block(1792, 192, 3, scale, relu=relu)


def _factorised_block(channels: int, width: int, kernel: int, scale: float, relu: bool) -> InceptionResidual:
    """Inception-ResNet-B/C: 1x1 | 1x1, 1xk, kx1 (``width`` each, same padding) on ``channels``."""
    pad = kernel // 2
    return InceptionResidual(
        [
            BasicConv2d(channels, width, 1),
            nn.Sequential(
                BasicConv2d(channels, width, 1),
                BasicConv2d(width, width, (1, kernel), padding=(0, pad)),
                BasicConv2d(width, width, (kernel, 1), padding=(pad, 0)),
            ),
        ],
        2 * width,
        channels,
        scale,
        relu=relu,
    )


class Concat(nn.Module):
    """Runs ``branch0``, ``branch1``, ... on the same input and concatenates along channels."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        for index, branch in enumerate(branches):
            self.add_module(f"branch{index}", branch)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)


def mixed_6a() -> Concat:
    """Reduction-A: 256 -> 384 + 256 + 256 = 896 channels, stride 2."""
    return Concat(
        [
            BasicConv2d(256, 384, 3, stride=2),
            nn.Sequential(
                BasicConv2d(256, 192, 1),
                BasicConv2d(192, 192, 3, padding=1),
                BasicConv2d(192, 256, 3, stride=2),
            ),
            nn.MaxPool2d(3, stride=2),
        ]
    )


def mixed_7a() -> Concat:
    """Reduction-B: 896 -> 384 + 256 + 256 + 896 = 1792 channels, stride 2."""
    return Concat(
        [
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 384, 3, stride=2)),
            nn.Sequential(BasicConv2d(896, 256, 1), BasicConv2d(256, 256, 3, stride=2)),
            nn.Sequential(
                BasicConv2d(896, 256, 1),
                BasicConv2d(256, 256, 3, padding=1),
                BasicConv2d(256, 256, 3, stride=2),
            ),
            nn.MaxPool2d(3, stride=2),
        ]
    )


class InceptionResnetV1(nn.Module):
    """160x160 face -> L2-normalised 512-d embedding (the final output); ``last_bn`` before normalising."""

    def __init__(self, dropout: float = 0.6) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2)
        self.conv2d_2a = BasicConv2d(32, 32, 3)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.conv2d_4b = BasicConv2d(192, 256, 3, stride=2)
        self.repeat_1 = nn.Sequential(*[block35() for _ in range(5)])
        self.mixed_6a = mixed_6a()
        self.repeat_2 = nn.Sequential(*[block17() for _ in range(10)])
        self.mixed_7a = mixed_7a()
        self.repeat_3 = nn.Sequential(*[block8() for _ in range(5)])
        self.block8 = block8(scale=1.0, relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.last_linear = nn.Linear(1792, EMBEDDING_SIZE, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBEDDING_SIZE, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x: Tensor) -> Tensor:
        for stage in list(self.children())[:-3]:  # stem, blocks, pooling
            x = stage(x)
        x = self.last_bn(self.last_linear(self.dropout(torch.flatten(x, 1))))
        return functional.normalize(x, p=2, dim=1)
