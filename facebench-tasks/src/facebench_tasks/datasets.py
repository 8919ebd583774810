"""The standard face-verification sets, read from their published layouts or InsightFace ``.bin``
packs into an images folder and a pairs file (``img1, img2, same, fold``) for the ``accuracy``
task.

Each reader takes the dataset's folder ``root`` and a folder ``work`` for converted files. When
the published layout is absent and ``root`` holds the set's ``.bin`` pack (``lfw.bin``,
``calfw.bin``, ``cplfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``), the pack is read instead.

* LFW: ``pairs.txt`` (10 folds of 300 same + 300 different pairs) and the images folder ``lfw/``
  (``lfw_funneled/``, ``lfw-deepfunneled/`` for the funnelled variants).
* CALFW / CPLFW: ``pairs_CALFW.txt`` / ``pairs_CPLFW.txt``, two lines per pair ``image label``
  (a same pair's two labels are equal and non-zero, a different pair's are 0), images in
  ``aligned images/`` (or ``images/``); folds are contiguous tenths, as InsightFace scores them.
* CFP-FP: ``Protocol/Pair_list_F.txt`` and ``Pair_list_P.txt`` (``index path``), and
  ``Protocol/Split/FP/01..10/same.txt`` and ``diff.txt`` (``frontal,profile`` indices): fold k is
  split k; images under ``Data/Images``.
* AgeDB-30: its ``.bin`` pack (the AgeDB distribution holds no pairs list).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.binpack import PACK_FOLDS, unpack
from facebench.datasets import DatasetData
from facebench.errors import DataError
from facebench.pair_maker import PAIR_COLUMNS, missing_images, read_lfw_pairs
from facebench.results import write_csv_atomic

PAIRS_FILE = "pairs.csv"


def read_lfw(root: Path, work: Path) -> DatasetData:
    """LFW: ``pairs.txt`` and ``lfw/``, or ``lfw.bin``."""
    return _lfw(root, work, "lfw")


def read_lfw_funneled(root: Path, work: Path) -> DatasetData:
    """LFW, funnelled: ``pairs.txt`` and ``lfw_funneled/``, or ``lfw.bin``."""
    return _lfw(root, work, "lfw_funneled")


def read_lfw_deepfunneled(root: Path, work: Path) -> DatasetData:
    """LFW, deep-funnelled: ``pairs.txt`` and ``lfw-deepfunneled/``, or ``lfw.bin``."""
    return _lfw(root, work, "lfw-deepfunneled")


def read_calfw(root: Path, work: Path) -> DatasetData:
    """CALFW: ``pairs_CALFW.txt`` and ``aligned images/``, or ``calfw.bin``."""
    return _listed_pairs(root, work, "pairs_CALFW.txt", "calfw.bin")


def read_cplfw(root: Path, work: Path) -> DatasetData:
    """CPLFW: ``pairs_CPLFW.txt`` and ``aligned images/``, or ``cplfw.bin``."""
    return _listed_pairs(root, work, "pairs_CPLFW.txt", "cplfw.bin")


def read_cfp_fp(root: Path, work: Path) -> DatasetData:
    """CFP-FP (frontal-profile): ``Protocol/`` and ``Data/Images``, or ``cfp_fp.bin``."""
    protocol = root / "Protocol"
    if not protocol.is_dir():
        return _pack_or_missing(root, work, "cfp_fp.bin", "Protocol/ (and Data/Images/)")
    frontal = _index_list(protocol / "Pair_list_F.txt")
    profile = _index_list(protocol / "Pair_list_P.txt")
    images = root / "Data" / "Images"
    rows = []
    for fold in range(1, PACK_FOLDS + 1):
        split = protocol / "Split" / "FP" / f"{fold:02d}"
        for name, same in (("same.txt", 1), ("diff.txt", 0)):
            for line_number, (first, second) in _index_pairs(split / name):
                try:
                    img1, img2 = frontal[first], profile[second]
                except KeyError as exc:
                    raise DataError(
                        f"{split / name}, line {line_number}: index {exc.args[0]} is not in "
                        f"Pair_list_F.txt / Pair_list_P.txt"
                    ) from None
                rows.append(
                    (_relative(protocol, img1, images), _relative(protocol, img2, images), same, fold)
                )
    return _written(pd.DataFrame(rows, columns=list(PAIR_COLUMNS)), images, work)


def read_agedb_30(root: Path, work: Path) -> DatasetData:
    """AgeDB-30: ``agedb_30.bin``."""
    return _pack_or_missing(root, work, "agedb_30.bin", "agedb_30.bin")


def _lfw(root: Path, work: Path, images_folder: str) -> DatasetData:
    pairs_txt = root / "pairs.txt"
    if not pairs_txt.is_file():
        return _pack_or_missing(root, work, "lfw.bin", f"pairs.txt and {images_folder}/")
    return _written(read_lfw_pairs(pairs_txt), root / images_folder, work)


def _listed_pairs(root: Path, work: Path, list_name: str, pack: str) -> DatasetData:
    listing = root / list_name
    if not listing.is_file():
        return _pack_or_missing(root, work, pack, f"{list_name} and 'aligned images/'")
    lines = [line.split() for line in listing.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if len(lines) % 2:
        raise DataError(f"{listing}: {len(lines)} lines; a pair is two lines, so the count must be even")
    rows = []
    for index in range(0, len(lines), 2):
        (img1, label1), (img2, label2) = (_image_label(listing, index + k, lines[index + k]) for k in (0, 1))
        if label1 != label2:
            raise DataError(
                f"{listing}, lines {index + 1}-{index + 2}: labels {label1} and {label2} differ; "
                f"a same pair shares one non-zero label, a different pair is labelled 0 twice"
            )
        rows.append((img1, img2, int(label1 != 0)))
    pairs = pd.DataFrame(rows, columns=list(PAIR_COLUMNS[:3]))
    pairs["fold"] = _contiguous_folds(len(pairs))
    folder = next(
        (root / n for n in ("aligned images", "images") if (root / n).is_dir()), root / "aligned images"
    )
    return _written(pairs, folder, work)


def _image_label(listing: Path, index: int, fields: list[str]) -> tuple[str, int]:
    if len(fields) != 2 or not fields[1].isdigit():
        raise DataError(f"{listing}, line {index + 1}: expected 'image label', found {' '.join(fields)!r}")
    return fields[0], int(fields[1])


def _contiguous_folds(count: int) -> np.ndarray:
    folds = np.zeros(count, dtype=int)
    for fold, indices in enumerate(np.array_split(np.arange(count), PACK_FOLDS), start=1):
        folds[indices] = fold
    return folds


def _index_list(path: Path) -> dict[int, str]:
    if not path.is_file():
        raise DataError(f"CFP: {path} does not exist; the CFP layout has Protocol/Pair_list_F.txt and _P.txt")
    listed = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit():
            raise DataError(f"{path}, line {number}: expected 'index path', found {line!r}")
        listed[int(fields[0])] = fields[1]
    return listed


def _index_pairs(path: Path) -> list[tuple[int, tuple[int, int]]]:
    if not path.is_file():
        raise DataError(f"CFP: {path} does not exist; each Protocol/Split/FP/NN holds same.txt and diff.txt")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = [field.strip() for field in line.split(",")]
        if fields == [""]:
            continue
        if len(fields) != 2 or not all(field.isdigit() for field in fields):
            raise DataError(f"{path}, line {number}: expected 'frontal,profile' indices, found {line!r}")
        pairs.append((number, (int(fields[0]), int(fields[1]))))
    return pairs


def _relative(protocol: Path, listed: str, images: Path) -> str:
    """A path of Pair_list_*.txt (relative to Protocol/) as a name under ``images``."""
    absolute = Path(os.path.normpath(protocol / listed))
    try:
        return absolute.relative_to(Path(os.path.normpath(images))).as_posix()
    except ValueError:
        raise DataError(f"CFP: {listed!r} (in {protocol}) is not under {images}") from None


def _pack_or_missing(root: Path, work: Path, pack: str, layout: str) -> DatasetData:
    if not (root / pack).is_file():
        raise DataError(f"{root} holds neither {layout} nor {pack}; is this the dataset's folder?")
    pairs = unpack(root / pack, work)
    return DatasetData(images=work / "images", pairs=write_csv_atomic(pairs, work / PAIRS_FILE))


def _written(pairs: pd.DataFrame, images: Path, work: Path) -> DatasetData:
    if not images.is_dir():
        raise DataError(f"images folder {images} does not exist; is the dataset unpacked there?")
    missing = missing_images(pairs, images)
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5])
        raise DataError(f"{len(missing)} images of the pairs are not in {images}: {shown}")
    return DatasetData(images=images, pairs=write_csv_atomic(pairs, work / PAIRS_FILE))
