"""IResNet, the ArcFace/insightface face-recognition ResNet (Deng et al. 2019, "ArcFace"; Duta et
al. 2020, "Improved Residual Networks"), written from the paper and insightface's public layout.

Module and parameter names follow insightface's ``arcface_torch`` backbones, so its published
``backbone.pth`` state dicts load unchanged. Input: 112x112 aligned faces scaled to [-1, 1].

Layout: a 3x3 stem (``conv1``, ``bn1``, ``prelu``) at stride 1, four stages ``layer1``..``layer4``
of pre-activation blocks (BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus a 1x1
conv + BN shortcut where the shape changes), each stage halving the resolution (112 -> 56 -> 28
-> 14 -> 7), then ``bn2``, flatten, ``dropout``, ``fc`` (25,088 -> 512) and ``features``
(BatchNorm1d): the 512-d face embedding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

BN_EPS = 1e-5
STAGE_WIDTHS = (64, 128, 256, 512)
DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
INPUT_SIZE = 112
FINAL_RESOLUTION = 7  # 112 / 2**4


class IBasicBlock(nn.Module):
    """A pre-activation residual block: BN, conv3x3, BN, PReLU, conv3x3 (stride), BN, + shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=BN_EPS)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels, eps=BN_EPS),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet backbone: 112x112 face -> ``embedding_size``-d embedding (the ``features`` layer)."""

    def __init__(
        self, depths: tuple[int, int, int, int], embedding_size: int = 512, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, STAGE_WIDTHS[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0], eps=BN_EPS)
        self.prelu = nn.PReLU(STAGE_WIDTHS[0])
        in_channels = STAGE_WIDTHS[0]
        for index, (width, depth) in enumerate(zip(STAGE_WIDTHS, depths, strict=True), start=1):
            blocks = [IBasicBlock(in_channels, width, stride=2)]
            blocks += [IBasicBlock(width, width) for _ in range(depth - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            in_channels = width
        self.bn2 = nn.BatchNorm2d(in_channels, eps=BN_EPS)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(in_channels * FINAL_RESOLUTION**2, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size, eps=BN_EPS)
        nn.init.constant_(self.features.weight, 1.0)  # insightface fixes this scale at 1

    def forward(self, x: Tensor) -> Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


def iresnet(arch: str) -> IResNet:
    """The IResNet named ``arch`` (a key of :data:`DEPTHS`), with PyTorch's default initialisation."""
    return IResNet(DEPTHS[arch])
