"""InsightFace .bin packs: read what they hold, refuse anything that would run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import KFold

from facebench.binpack import read_pack, unpack
from facebench.errors import DataError

from .conftest import pack_bytes


def test_pack_images_labels_and_folds_match_insightface(tmp_path: Path) -> None:
    data, images, labels = pack_bytes(pairs=23)
    pack = tmp_path / "lfw.bin"
    pack.write_bytes(data)
    pairs = unpack(pack, tmp_path / "work")
    assert pairs["same"].tolist() == [int(label) for label in labels]
    for k, row in pairs.iterrows():
        assert (tmp_path / "work" / "images" / row["img1"]).read_bytes() == images[2 * k]
        assert (tmp_path / "work" / "images" / row["img2"]).read_bytes() == images[2 * k + 1]
    assert pairs.loc[3, "img2"].endswith(".png") and pairs.loc[3, "img1"].endswith(".jpg")
    # InsightFace scores packs with KFold(n_splits=10, shuffle=False)
    for fold, (_, test) in enumerate(KFold(n_splits=10, shuffle=False).split(np.arange(23)), start=1):
        assert pairs.index[pairs["fold"] == fold].tolist() == test.tolist()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_numpy_bool_issame_is_admitted(tmp_path: Path, protocol: int) -> None:
    _, images, labels = pack_bytes(pairs=10)
    (tmp_path / "p.bin").write_bytes(pickle.dumps((images, np.array(labels)), protocol=protocol))
    assert read_pack(tmp_path / "p.bin") == (images, labels)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pack_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pack = tmp_path / "evil.bin"
    pack.write_bytes(pickle.dumps(([b"\xff\xd8\xff", _Exploit(marker)], [True])))
    with pytest.raises(DataError, match="refused and nothing in it was run"):
        read_pack(pack)
    assert not marker.exists()


def test_pack_with_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "odd.bin"
    pack.write_bytes(pickle.dumps(([b"x", b"y"], [Path("a")])))
    with pytest.raises(DataError, match="pathlib"):
        read_pack(pack)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (pickle.dumps(([b"\xff\xd8\xff1"], [True])), "1 images for 1 pairs"),
        (pickle.dumps(([b"\xff\xd8\xff1", b"\xff\xd8\xff2"], [1])), "other than True/False"),
        (pickle.dumps(([b"\xff\xd8\xff1", b"\xff\xd8\xff2"], np.array([1]))), "not of booleans"),
        (pickle.dumps({"bins": []}), "holds \\(images, issame\\)"),
        (b"not a pickle", "not a readable .bin pack"),
    ],
)
def test_malformed_packs_say_what_is_wrong(tmp_path: Path, content: bytes, message: str) -> None:
    pack = tmp_path / "bad.bin"
    pack.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_pack(pack)


def test_image_that_is_not_jpeg_or_png_is_refused(tmp_path: Path) -> None:
    pack = tmp_path / "gif.bin"
    pack.write_bytes(pickle.dumps(([b"GIF89a", b"GIF89a"], [True])))
    with pytest.raises(DataError, match="neither a JPEG nor a PNG"):
        unpack(pack, tmp_path / "work")
