"""Decoding every common image mode to upright RGB, content hashing, and clear errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from facebench.errors import DataError
from facebench.images import ImageDataset, content_hash, content_hashes, load_rgb


def pixels(path) -> np.ndarray:
    image = load_rgb(path)
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


def test_grey_becomes_equal_channels(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey).save(tmp_path / "grey.png")
    out = pixels(tmp_path / "grey.png")
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], grey)


def test_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[:2, :, 3] = 255  # top half opaque
    rgba[2:, :2, 3] = 0  # bottom-left transparent
    rgba[2:, 2:, 3] = 128  # bottom-right half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = pixels(tmp_path / "rgba.png")
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[3, 0], [255, 255, 255])
    expected = np.rint(np.array([200, 0, 0]) * 128 / 255 + 255 * (1 - 128 / 255))
    np.testing.assert_allclose(out[3, 3], expected, atol=1)

    la = Image.fromarray(np.stack([np.full((4, 4), 10, np.uint8), rgba[..., 3]], axis=-1), mode="LA")
    la.save(tmp_path / "la.png")
    out = pixels(tmp_path / "la.png")
    np.testing.assert_array_equal(out[0, 0], [10, 10, 10])
    np.testing.assert_array_equal(out[3, 0], [255, 255, 255])


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(tmp_path / "cmyk.tiff")
    np.testing.assert_array_equal(pixels(tmp_path / "cmyk.tiff")[0, 0], [255, 0, 0])


def test_palette_becomes_its_colours(tmp_path):
    image = Image.new("P", (4, 4))
    image.putpalette([0, 0, 0, 10, 20, 30, 250, 240, 230] + [0] * (256 * 3 - 9))
    image.putdata([1] * 8 + [2] * 8)
    image.save(tmp_path / "palette.gif")
    out = pixels(tmp_path / "palette.gif")
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[3, 3], [250, 240, 230])


def test_sixteen_bit_grey_is_scaled_to_eight_bit(tmp_path):
    grey16 = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    with Image.open(tmp_path / "grey16.png") as raw:
        assert raw.mode in ("I;16", "I")  # really stored as 16-bit
    out = pixels(tmp_path / "grey16.png")
    np.testing.assert_array_equal(out[..., 0], [[0, 100], [255, 7]])
    np.testing.assert_array_equal(out[..., 2], out[..., 0])


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:, :16] = (255, 0, 0)  # left half red
    stored[:, 16:] = (0, 0, 255)  # right half blue
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = pixels(tmp_path / "rotated.jpg")
    assert out.shape == (32, 16, 3)  # portrait once rotated
    assert out[4, 8, 0] > 200 and out[4, 8, 2] < 60  # the left (red) half is now on top
    assert out[28, 8, 2] > 200 and out[28, 8, 0] < 60


def test_corrupt_truncated_and_missing_images_name_the_file(tmp_path):
    (tmp_path / "corrupt.jpg").write_bytes(b"this is not an image")
    with pytest.raises(DataError, match=r"corrupt\.jpg.*cannot be decoded"):
        load_rgb(tmp_path / "corrupt.jpg")
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "whole.jpg")
    (tmp_path / "truncated.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:200])
    with pytest.raises(DataError, match=r"truncated\.jpg"):
        load_rgb(tmp_path / "truncated.jpg")
    with pytest.raises(DataError, match=r"absent\.png.*does not exist"):
        load_rgb(tmp_path / "absent.png")
    with pytest.raises(DataError, match=r"absent\.png.*does not exist"):
        content_hash(tmp_path / "absent.png")


def test_content_hash_depends_on_bytes_only(tmp_path, images):
    copy = tmp_path / "copy.png"
    copy.write_bytes(images[0].read_bytes())
    assert content_hash(copy) == content_hash(images[0])
    assert content_hash(images[0]) != content_hash(images[1])
    assert content_hash(images[0]) == hashlib.blake2b(images[0].read_bytes(), digest_size=16).hexdigest()
    many = images * 10  # enough to use the thread pool
    assert content_hashes(many) == [content_hash(path) for path in many]


def test_dataset_yields_index_and_preprocessed_tensor(images, tiny):
    model = tiny()
    dataset = ImageDataset(images[:3], model.get_preprocess_function())
    assert len(dataset) == 3
    index, tensor = dataset[2]
    assert index == 2
    assert tensor.shape == (3, 32, 32)
    np.testing.assert_array_equal(tensor.numpy(), model.preprocess_image(images[2]).numpy())
