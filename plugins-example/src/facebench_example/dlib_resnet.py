"""dlib's face-recognition ResNet as a PyTorch module, and a loader for dlib's ``.dat`` weights.

The network is ``anet_type`` from dlib's ``dnn_face_recognition_ex.cpp`` (the model behind
``dlib_face_recognition_resnet_model_v1.dat``, which ships in the PyPI package
``face_recognition_models``). From the input up:

- ``input_rgb_image_sized<150>``: ``(pixel - channel mean) / 256`` (the means are read from the file);
- ``con<32,7,7,2,2>``, ``affine``, ``relu``, ``max_pool<3,3,2,2>``;
- ``alevel4``: three ``ares<32>``; ``alevel3``: ``ares_down<64>`` then three ``ares<64>``;
  ``alevel2``: ``ares_down<128>`` then two ``ares<128>``; ``alevel1``: ``ares_down<256>`` then two
  ``ares<256>``; ``alevel0``: one ``ares_down<256>``;
- ``avg_pool_everything``, ``fc_no_bias<128>``: the 128-d face descriptor.

``ares<N>`` is ``relu(x + affine(con3x3(relu(affine(con3x3(x))))))``; ``ares_down<N>`` strides
its first convolution by 2 and adds ``avg_pool<2,2,2,2>(x)`` instead of ``x``. dlib's
``affine`` layer is a per-channel scale and shift (batch-norm frozen for inference), and
dlib's ``add_prev`` adds tensors of different shapes by zero-padding both to the larger one
(top-left aligned): a down block's shortcut has half the channels (and, from 8x8 to 3x3,
one more row and column than the branch).

Convolutions with stride 1 pad by ``k // 2``, strided ones and poolings do not pad (dlib's
defaults; the loader checks every value against the file).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facebench.errors import WeightsError
from facebench_example.dlib_format import DlibReader

WEIGHTS_FILENAME = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
# (name, channels, blocks, first block strides), input side first, dlib's level names
LEVELS: tuple[tuple[str, int, int, bool], ...] = (
    ("alevel4", 32, 3, False),
    ("alevel3", 64, 4, True),
    ("alevel2", 128, 3, True),
    ("alevel1", 256, 3, True),
    ("alevel0", 256, 1, True),
)


class InputNormalization(nn.Module):
    """dlib's ``input_rgb_image``: ``(pixel - mean[c]) / 256`` on 0-255 RGB values."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(3))

    def forward(self, pixels: Tensor) -> Tensor:
        return (pixels - self.mean.view(1, 3, 1, 1)) / 256.0


class Affine(nn.Module):
    """dlib's ``affine_`` layer: ``gamma[c] * x + beta[c]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


def zero_padded_sum(a: Tensor, b: Tensor) -> Tensor:
    """``a + b`` as dlib's ``add_prev`` does it: both zero-padded (at the end) to the larger shape."""
    if a.shape == b.shape:
        return a + b
    channels, rows, cols = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: Tensor) -> Tensor:
        return F.pad(t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1]))

    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` (``downsample=False``) or ``ares_down`` block."""

    def __init__(self, in_channels: int, channels: int, downsample: bool) -> None:
        super().__init__()
        stride = 2 if downsample else 1
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=0 if downsample else 1)
        self.affine1 = Affine(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1)
        self.affine2 = Affine(channels)
        self.shortcut: nn.Module = nn.AvgPool2d(2, stride=2) if downsample else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        branch = self.affine2(self.conv2(self.relu1(self.affine1(self.conv1(x)))))
        return self.relu(zero_padded_sum(branch, self.shortcut(x)))


class DlibFaceResNet(nn.Module):
    """The network of ``dlib_face_recognition_resnet_model_v1``: 0-255 RGB 150x150 chips -> 128-d.

    Random weights until :func:`load_dlib_weights` fills it (``from_dlib_file`` does both).
    """

    def __init__(self) -> None:
        super().__init__()
        self.input = InputNormalization()
        self.conv = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine = Affine(32)
        self.relu = nn.ReLU()
        self.max_pool = nn.MaxPool2d(3, stride=2)
        in_channels = 32
        for name, channels, blocks, downsample in LEVELS:
            level = nn.Sequential(
                *(
                    ResidualBlock(in_channels if i == 0 else channels, channels, downsample and i == 0)
                    for i in range(blocks)
                )
            )
            self.add_module(name, level)
            in_channels = channels
        self.avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(in_channels, DESCRIPTOR_SIZE, bias=False)
        self.same_person_threshold = 0.6  # dlib's distance threshold, read from the file

    def forward(self, pixels: Tensor) -> Tensor:
        x = self.max_pool(self.relu(self.affine(self.conv(self.input(pixels)))))
        for name, *_ in LEVELS:
            x = getattr(self, name)(x)
        return self.fc(self.avg_pool(x))

    @classmethod
    def from_dlib_file(cls, path: str | Path) -> DlibFaceResNet:
        network = cls()
        load_dlib_weights(network, path)
        return network


def default_weights_path() -> Path | None:
    """The ``.dat`` inside the installed ``face_recognition_models`` package, or None.

    Found without importing the package (its ``__init__`` needs ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "models" / WEIGHTS_FILENAME
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class DlibLayer:
    """One layer of the serialized network, input side first: its kind and module (if any)."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    module: nn.Module | None = None


def dlib_layers(network: DlibFaceResNet) -> list[DlibLayer]:
    """The network as dlib serializes it, input side first (``tag``/``skip`` hold no data)."""
    layers = [
        DlibLayer("con", network.conv),
        DlibLayer("affine", network.affine),
        DlibLayer("relu"),
        DlibLayer("max_pool", network.max_pool),
    ]
    for name, *_ in LEVELS:
        for block in getattr(network, name):
            assert isinstance(block, ResidualBlock)
            layers += [
                DlibLayer("tag"),  # tag1: the block's input
                DlibLayer("con", block.conv1),
                DlibLayer("affine", block.affine1),
                DlibLayer("relu"),
                DlibLayer("con", block.conv2),
                DlibLayer("affine", block.affine2),
            ]
            if isinstance(block.shortcut, nn.AvgPool2d):  # tag2 the branch, skip back to tag1, pool
                layers += [DlibLayer("tag"), DlibLayer("skip"), DlibLayer("avg_pool", block.shortcut)]
            layers += [DlibLayer("add_prev"), DlibLayer("relu")]
    layers += [DlibLayer("avg_pool", None), DlibLayer("fc", network.fc)]  # avg_pool_everything
    return layers


LAYER_NAMES = {
    "con": "con_4",
    "affine": "affine_",
    "relu": "relu_",
    "max_pool": "max_pool_2",
    "avg_pool": "avg_pool_2",
    "add_prev": "add_prev_",
    "fc": "fc_2",
}


def load_dlib_weights(network: DlibFaceResNet, path: str | Path) -> None:
    """Fill ``network`` from a dlib ``anet_type`` file, checking every layer's type and shape.

    The file is ``serialize(add_loss_layer)``: the loss layer's version, its details, then the
    nested layers. Each ``add_layer`` writes its version, then its sub-network, then its own
    details and training state, so the file holds every layer's version (output side first),
    the input layer, then every layer's details (input side first).
    """
    reader = DlibReader.from_file(path)
    reader.expect_integer(1, "loss layer version")
    reader.expect_string("loss_metric_2", "loss layer (is this dlib's face recognition model?)")
    reader.real()  # margin, training only
    network.same_person_threshold = reader.real()

    layers = dlib_layers(network)
    expected_versions = [1 if layer.kind in ("tag", "skip") else 2 for layer in reversed(layers)]
    expected_versions[-1] = 3  # the layer on top of the input layer
    versions = [reader.integer() for _ in expected_versions]
    if versions != expected_versions:
        raise reader.error(
            "the layer structure differs from dlib_face_recognition_resnet_model_v1's anet_type; "
            "this loader reads only that network"
        )

    reader.expect_string("input_rgb_image_sized", "input layer")
    means = [reader.real() for _ in range(3)]
    rows, cols = reader.integer(), reader.integer()
    if (rows, cols) != (CHIP_SIZE, CHIP_SIZE):
        raise reader.error(f"input size {rows}x{cols}; expected {CHIP_SIZE}x{CHIP_SIZE}")
    network.input.mean.copy_(torch.tensor(means))

    first = True
    for layer in layers:
        if layer.kind in ("tag", "skip"):
            continue
        reader.expect_string(LAYER_NAMES[layer.kind], f"layer type (expected a {layer.kind} layer)")
        _read_details(reader, layer)
        _skip_training_state(reader, on_input_layer=first)
        first = False
    if not reader.at_end:
        raise reader.error(f"{len(reader.data) - reader.offset} bytes left after the last layer")


def _read_details(reader: DlibReader, layer: DlibLayer) -> None:
    module = layer.module
    if layer.kind == "con":
        assert isinstance(module, nn.Conv2d)
        params = reader.tensor().reshape(-1)
        filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
        filters_shape = reader.alias_tensor()
        reader.alias_tensor()  # biases
        for _ in range(4):  # learning-rate and weight-decay multipliers
            reader.real()
        _check(
            reader,
            "convolution",
            (filters, module.in_channels, rows, cols, stride_y, stride_x, pad_y, pad_x),
            (module.out_channels, module.in_channels, *module.kernel_size, *module.stride, *module.padding),
        )
        _check(reader, "convolution filters", filters_shape, tuple(module.weight.shape))
        weight_count = module.weight.numel()
        _check(reader, "convolution parameters", params.size, weight_count + filters)
        assert module.bias is not None
        module.weight.data.copy_(torch.from_numpy(params[:weight_count].reshape(module.weight.shape)))
        module.bias.data.copy_(torch.from_numpy(params[weight_count:]))
    elif layer.kind == "affine":
        assert isinstance(module, Affine)
        params = reader.tensor().reshape(-1)
        gamma_shape, beta_shape = reader.alias_tensor(), reader.alias_tensor()
        mode = reader.integer()
        channels = module.gamma.numel()
        _check(reader, "affine layer (mode, gamma, beta)", (mode, gamma_shape, beta_shape),
               (0, (1, channels, 1, 1), (1, channels, 1, 1)))  # fmt: skip
        module.gamma.data.copy_(torch.from_numpy(params[:channels]))
        module.beta.data.copy_(torch.from_numpy(params[channels:]))
    elif layer.kind in ("max_pool", "avg_pool"):
        window_y, window_x, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(6))
        if module is None:  # avg_pool_everything: a zero window means the whole image
            expected: tuple[int, ...] = (0, 0, 1, 1, 0, 0)
        else:
            assert isinstance(module, nn.MaxPool2d | nn.AvgPool2d)
            expected = (module.kernel_size, module.kernel_size, module.stride, module.stride, 0, 0)
        _check(
            reader, f"{layer.kind} layer", (window_y, window_x, stride_y, stride_x, pad_y, pad_x), expected
        )
    elif layer.kind == "fc":
        assert isinstance(module, nn.Linear)
        outputs, inputs = reader.integer(), reader.integer()
        params = reader.tensor().reshape(-1)
        reader.alias_tensor()  # weights
        reader.alias_tensor()  # biases
        bias_mode = reader.integer()
        for _ in range(4):
            reader.real()
        _check(reader, "fc_no_bias layer (outputs, inputs, no-bias mode, parameters)",
               (outputs, inputs, bias_mode, params.size),
               (module.out_features, module.in_features, 1, module.weight.numel()))  # fmt: skip
        # dlib computes x @ W with W stored (inputs, outputs), row-major
        weight = params.reshape(inputs, outputs).T
        module.weight.data.copy_(torch.from_numpy(np.ascontiguousarray(weight)))


def _skip_training_state(reader: DlibReader, on_input_layer: bool) -> None:
    """What an ``add_layer`` keeps for training: three flags and three (gradient) tensors."""
    for _ in range(3):
        reader.boolean()
    for _ in range(3):
        reader.tensor()
    if on_input_layer:
        reader.integer()  # sample expansion factor


def _check(reader: DlibReader, what: str, found: object, expected: object) -> None:
    if found != expected:
        raise WeightsError(
            f"{reader.source}, byte {reader.offset}: {what} is {found} in the file but {expected} "
            f"in dlib's published network; this loader reads only dlib_face_recognition_resnet_model_v1"
        )
