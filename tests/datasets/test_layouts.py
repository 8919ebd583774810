"""The standard sets read from tiny copies of their published layouts and from .bin packs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold

from facebench.errors import DataError
from facebench.pair_maker import read_lfw_pairs
from facebench_tasks import datasets

from .conftest import FIXTURES, pack_bytes


def test_lfw_layout_keeps_the_official_pairs_and_folds(lfw_copy: Path, tmp_path: Path) -> None:
    data = datasets.read_lfw(lfw_copy, tmp_path / "work")
    assert data.images == lfw_copy / "lfw"
    pairs = pd.read_csv(data.pairs)
    pd.testing.assert_frame_equal(pairs, read_lfw_pairs(FIXTURES / "lfw" / "pairs.txt"))
    assert pairs.loc[0].tolist() == [
        "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
        "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
        1,
        1,
    ]
    assert pairs.loc[7].tolist() == [
        "Abel_Pacheco/Abel_Pacheco_0002.jpg",
        "Akhmed_Zakayev/Akhmed_Zakayev_0002.jpg",
        0,
        2,
    ]


def test_lfw_variants_read_their_own_images_folder(lfw_copy: Path, tmp_path: Path) -> None:
    (lfw_copy / "lfw").rename(lfw_copy / "lfw-deepfunneled")
    assert datasets.read_lfw_deepfunneled(lfw_copy, tmp_path / "w").images == lfw_copy / "lfw-deepfunneled"
    with pytest.raises(DataError, match=r"images folder .*lfw_funneled does not exist"):
        datasets.read_lfw_funneled(lfw_copy, tmp_path / "w")


def test_lfw_missing_image_is_named(lfw_copy: Path, tmp_path: Path) -> None:
    (lfw_copy / "lfw" / "Zico" / "Zico_0002.jpg").unlink()
    with pytest.raises(DataError, match=r"1 images of the pairs are not in .*Zico_0002.jpg"):
        datasets.read_lfw(lfw_copy, tmp_path / "work")


def test_calfw_pairs_labels_and_contiguous_folds(calfw_copy: Path, tmp_path: Path) -> None:
    data = datasets.read_calfw(calfw_copy, tmp_path / "work")
    pairs = pd.read_csv(data.pairs)
    lines = [line.split() for line in (FIXTURES / "calfw" / "pairs_CALFW.txt").read_text().splitlines()]
    assert pairs["img1"].tolist() == [fields[0] for fields in lines[0::2]]
    assert pairs["img2"].tolist() == [fields[0] for fields in lines[1::2]]
    assert pairs["same"].tolist() == [int(fields[1] != "0") for fields in lines[0::2]]
    for fold, (_, test) in enumerate(KFold(n_splits=10).split(np.arange(len(pairs))), start=1):
        assert pairs.index[pairs["fold"] == fold].tolist() == test.tolist()
    assert data.images == calfw_copy / "aligned images"


def test_calfw_mismatched_labels_are_refused(calfw_copy: Path, tmp_path: Path) -> None:
    listing = calfw_copy / "pairs_CALFW.txt"
    lines = listing.read_text().splitlines()
    lines[1] = lines[1].replace(" 1", " 7")
    listing.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"lines 1-2: labels 1 and 7 differ"):
        datasets.read_calfw(calfw_copy, tmp_path / "work")


def test_cfp_fp_splits_are_the_folds(cfp_copy: Path, tmp_path: Path) -> None:
    data = datasets.read_cfp_fp(cfp_copy, tmp_path / "work")
    pairs = pd.read_csv(data.pairs)
    assert data.images == cfp_copy / "Data" / "Images"
    assert len(pairs) == 20 and pairs.groupby("fold")["same"].agg(list).tolist() == [[1, 0]] * 10
    # split 02: same "3,4" -> frontal 3 and profile 4; diff "3,5" -> frontal 3 and profile 5
    assert pairs.loc[2].tolist() == ["002/frontal/01.jpg", "002/profile/02.jpg", 1, 2]
    assert pairs.loc[3].tolist() == ["002/frontal/01.jpg", "003/profile/01.jpg", 0, 2]


def test_cfp_bad_index_is_named(cfp_copy: Path, tmp_path: Path) -> None:
    (cfp_copy / "Protocol" / "Split" / "FP" / "04" / "diff.txt").write_text("1,99\n")
    with pytest.raises(DataError, match=r"04/diff.txt, line 1: index 99"):
        datasets.read_cfp_fp(cfp_copy, tmp_path / "work")


@pytest.mark.parametrize(
    ("reader", "pack"),
    [
        ("read_lfw", "lfw.bin"),
        ("read_calfw", "calfw.bin"),
        ("read_cfp_fp", "cfp_fp.bin"),
        ("read_agedb_30", "agedb_30.bin"),
    ],
)
def test_each_set_reads_its_bin_pack(tmp_path: Path, reader: str, pack: str) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    content, images, labels = pack_bytes(pairs=20)
    (root / pack).write_bytes(content)
    data = getattr(datasets, reader)(root, tmp_path / "work")
    pairs = pd.read_csv(data.pairs)
    assert pairs["same"].tolist() == [int(label) for label in labels]
    assert (data.images / pairs.loc[0, "img2"]).read_bytes() == images[1]


def test_absent_copy_names_both_layouts(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"neither pairs_CPLFW.txt and 'aligned images/' nor cplfw.bin"):
        datasets.read_cplfw(tmp_path, tmp_path / "work")
