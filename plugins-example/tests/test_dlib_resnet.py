"""The PyTorch port of dlib's face-recognition ResNet against dlib's own descriptors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facebench.errors import WeightsError
from facebench_example.dlib_format import DlibReader
from facebench_example.dlib_resnet import DlibFaceResNet, default_weights_path, zero_padded_sum
from facebench_example.model import DlibResNet


def test_descriptors_equal_dlibs_own(dlib_model: DlibResNet, fixtures: Path, dlib_descriptors: dict) -> None:
    names = sorted(dlib_descriptors)
    batch = torch.stack([dlib_model.preprocess_image(fixtures / "dlib_chips" / name) for name in names])
    output = dlib_model.get_output(batch)["output"].numpy()
    expected = np.array([dlib_descriptors[name] for name in names])
    assert output.shape == (len(names), 128)
    np.testing.assert_allclose(output, expected, rtol=0, atol=1e-4)


def test_intermediate_layers_come_from_the_same_forward_pass(fixtures: Path) -> None:
    model = DlibResNet(device="cpu", extract_layers=["alevel1", "alevel0.0.conv1", "fc"])
    chip = model.preprocess_image(fixtures / "dlib_chips" / "grace_hopper_dlib_chip.png")[None]
    outputs = model.get_output(chip)
    # 150 -> conv7/2 72 -> pool 35 -> 17 -> 8 -> 4 (the shortcut's 4x4 wins over the branch's 3x3)
    assert outputs["alevel1"].shape == (1, 256 * 4 * 4)
    assert outputs["alevel0.0.conv1"].shape == (1, 256 * 1 * 1)
    with torch.no_grad():
        final = model.model(chip)
    torch.testing.assert_close(outputs["fc"], final, rtol=0, atol=0)


def test_the_file_holds_every_parameter_of_the_published_network() -> None:
    network = DlibFaceResNet.from_dlib_file(default_weights_path())
    convolutions = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == 29
    # the float32 parameters fill the file but for its few kilobytes of headers
    parameter_bytes = 4 * sum(p.numel() for p in network.parameters())
    assert 0 < default_weights_path().stat().st_size - parameter_bytes < 10_000
    assert network.input.mean.tolist() == pytest.approx([122.782, 117.001, 104.298], abs=1e-3)
    assert network.same_person_threshold == pytest.approx(0.6)


def test_zero_padded_sum_pads_channels_rows_and_columns_at_the_end() -> None:
    branch = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(1, 2, 3, 3)
    shortcut = torch.ones(1, 1, 4, 4)
    total = zero_padded_sum(branch, shortcut)
    expected = torch.zeros(1, 2, 4, 4)
    expected[:, :2, :3, :3] += branch
    expected[:, :1] += 1
    torch.testing.assert_close(total, expected)


def test_reader_decodes_dlibs_integer_and_float_encoding() -> None:
    # 2, -17, and 0.6 written as mantissa 0x99999a times 2**-24
    reader = DlibReader(bytes([0x01, 0x02, 0x81, 0x11, 0x03, 0x9A, 0x99, 0x99, 0x81, 0x18]))
    assert reader.integer() == 2
    assert reader.integer() == -17
    assert reader.real() == pytest.approx(0.6, abs=1e-7)
    assert reader.at_end


def test_truncated_weights_file_is_a_weights_error(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(default_weights_path().read_bytes()[:100_000])
    with pytest.raises(WeightsError, match=r"truncated\.dat.*ends early"):
        DlibFaceResNet.from_dlib_file(truncated)


def test_another_dlib_file_is_refused_with_its_name(tmp_path: Path) -> None:
    other = tmp_path / "not_a_network.dat"
    other.write_bytes(bytes([0x01, 0x01, 0x01, 0x03]) + b"abc")
    with pytest.raises(WeightsError, match=r"not_a_network\.dat.*loss layer"):
        DlibFaceResNet.from_dlib_file(other)


def test_images_of_another_size_are_cropped_and_resized_to_a_chip(fixtures: Path) -> None:
    model = DlibResNet(device="cpu")
    tensor = model.preprocess_image(fixtures / "grace_hopper.jpg")
    assert tensor.shape == (3, 150, 150)
    assert float(tensor.min()) >= 0 and float(tensor.max()) <= 255


def test_identity_depends_on_alignment() -> None:
    assert DlibResNet(align=True).identity != DlibResNet(align=False).identity
