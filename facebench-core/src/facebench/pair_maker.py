"""Make verification pairs files: from a face dataset laid out one folder per identity, or from
LFW's own ``pairs.txt``. The ``facebench pairs`` command.

A dataset is ``ROOT/<identity>/<image>`` (images may sit in sub-folders of an identity's
folder). :func:`scan_dataset` lists it: image files by suffix that decode as images (others are
left out and counted), identical bytes counted once
(content hash, as the engine hashes images), identities with fewer than ``min_images`` distinct
images skipped and counted. :func:`make_pairs` draws, for each of K folds, N same-identity and
N different-identity pairs, seeded:

* a same pair: an identity drawn uniformly among those with an unused same pair left, then an
  unused pair of its images drawn uniformly;
* a different pair: two identities drawn uniformly, then one image of each, drawn again when
  that pair of images was already drawn.

No pair appears twice in a file. With ``disjoint=True`` the identities are shuffled and dealt
into K groups and each fold draws only from its own group, so no person appears in two folds
(as in LFW's View 2); otherwise folds share identities and images.

Pairs files have the columns ``img1, img2, same, fold`` (``same`` is 1 or 0, folds count from
1), fold by fold, each fold's same pairs before its different pairs: LFW's own order, so the
``accuracy`` task's contiguous folds are exactly these folds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.pairs import IMAGE_SUFFIXES
from facebench.textfiles import read_utf8

PAIR_COLUMNS = ("img1", "img2", "same", "fold")
TABLE_COLUMNS = ("image", "identity")


@dataclass(frozen=True)
class FaceDataset:
    """The usable images of a one-folder-per-identity dataset.

    ``images`` maps each kept identity to its distinct images (paths relative to ``root``,
    ``/``-separated, sorted). ``undecodable`` counts image-named files that do not decode as
    images (left out). ``duplicates`` counts files dropped because an earlier file of the
    same identity has the same bytes; ``conflicts`` counts files whose bytes appear under more
    than one identity (every copy is dropped: its identity is unknown); ``skipped`` lists the
    identities left with fewer than ``min_images`` images; ``loose_files`` counts images lying
    directly in ``root``, outside any identity folder (ignored).
    """

    root: Path
    images: dict[str, list[str]]
    min_images: int
    duplicates: int = 0
    conflicts: int = 0
    skipped: list[str] = field(default_factory=list)
    loose_files: int = 0
    undecodable: int = 0

    def table(self) -> pd.DataFrame:
        """The images table (``image, identity``) of every kept image."""
        rows = [(image, name) for name, images in sorted(self.images.items()) for image in images]
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    def summary(self) -> str:
        """One line on what was kept and what was left out, and why."""
        kept = sum(len(images) for images in self.images.values())
        parts = [f"{len(self.images)} identities, {kept} distinct images"]
        if self.undecodable:
            parts.append(f"{self.undecodable} files that do not decode as images left out")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate files (identical bytes) counted once")
        if self.conflicts:
            parts.append(f"{self.conflicts} files with the same bytes under different identities left out")
        if self.skipped:
            parts.append(f"{len(self.skipped)} identities with fewer than {self.min_images} images skipped")
        if self.loose_files:
            parts.append(f"{self.loose_files} images outside any identity folder ignored")
        return "; ".join(parts)


def scan_dataset(root: str | Path, min_images: int = 2) -> FaceDataset:
    """The images of ``root``, one sub-folder per identity (see the module docstring)."""
    from concurrent.futures import ThreadPoolExecutor

    from facebench.imagecheck import decode_problem
    from facebench.images import content_hashes

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {str(root)!r} does not exist (or is not a folder)")
    if min_images < 1:
        raise ConfigError(f"min_images must be at least 1, not {min_images!r}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = sum(1 for p in root.iterdir() if p.is_file() and _is_image(p))
    named: list[tuple[str, Path]] = [
        (folder.name, path)
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file() and _is_image(path) and not _hidden(path.relative_to(folder))
    ]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="facebench-decode-check") as pool:
        problems = list(pool.map(decode_problem, [path for _, path in named]))
    files = [item for item, problem in zip(named, problems, strict=True) if problem is None]
    if not files:
        raise DataError(
            f"dataset folder {str(root)!r} has no images in identity sub-folders; lay it out as "
            f"{str(root)!r}/<identity>/<image> (suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    hashes = content_hashes([path for _, path in files])
    owners: dict[str, set[str]] = defaultdict(set)
    for (name, _), digest in zip(files, hashes, strict=True):
        owners[digest].add(name)
    images: dict[str, list[str]] = {folder.name: [] for folder in folders}
    seen: set[str] = set()
    duplicates = conflicts = 0
    for (name, path), digest in zip(files, hashes, strict=True):
        if len(owners[digest]) > 1:
            conflicts += 1
        elif digest in seen:
            duplicates += 1
        else:
            seen.add(digest)
            images[name].append(path.relative_to(root).as_posix())
    skipped = [name for name, kept in images.items() if len(kept) < min_images]
    return FaceDataset(
        root=root,
        images={name: kept for name, kept in images.items() if len(kept) >= min_images},
        min_images=min_images,
        duplicates=duplicates,
        conflicts=conflicts,
        skipped=skipped,
        loose_files=loose,
        undecodable=len(named) - len(files),
    )


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def make_pairs(
    dataset: FaceDataset,
    folds: int = 10,
    same: int = 300,
    different: int = 300,
    seed: int = 0,
    disjoint: bool = False,
) -> pd.DataFrame:
    """``folds`` × (``same`` same + ``different`` different) pairs from ``dataset``, seeded.

    Raises :class:`DataError` when the dataset (or, with ``disjoint``, a fold's share of the
    identities) cannot give that many distinct pairs.
    """
    if folds < 1 or same < 0 or different < 0 or same + different < 1:
        raise ConfigError(
            f"need folds >= 1 and at least one pair per fold; got folds={folds}, "
            f"same={same}, different={different}"
        )
    rng = np.random.default_rng(seed)
    names = sorted(dataset.images)
    if disjoint:
        if len(names) < folds:
            raise DataError(
                f"{len(names)} identities cannot be split into {folds} identity-disjoint folds; "
                f"use fewer folds (--folds) or drop --disjoint"
            )
        order = rng.permutation(len(names))
        groups = [sorted(names[i] for i in order[k::folds]) for k in range(folds)]
        samplers = [_PairSampler({n: dataset.images[n] for n in group}, rng) for group in groups]
        for k, sampler in enumerate(samplers):
            where = f"fold {k + 1} of {folds} ({len(groups[k])} identities of its own)"
            sampler.check(same, different, where, "drop --disjoint, ")
        drawn = [(sampler.same_pairs(same), sampler.different_pairs(different)) for sampler in samplers]
    else:
        sampler = _PairSampler({n: dataset.images[n] for n in names}, rng)
        sampler.check(folds * same, folds * different, f"the dataset ({len(names)} identities)", "")
        all_same, all_different = sampler.same_pairs(folds * same), sampler.different_pairs(folds * different)
        drawn = [
            (all_same[k * same : (k + 1) * same], all_different[k * different : (k + 1) * different])
            for k in range(folds)
        ]
    rows = [
        (img1, img2, label, k + 1)
        for k, (same_pairs, different_pairs) in enumerate(drawn)
        for label, pairs in ((1, same_pairs), (0, different_pairs))
        for img1, img2 in pairs
    ]
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


class _PairSampler:
    """Draws distinct same and different pairs from some identities (see the module docstring)."""

    def __init__(self, images: dict[str, list[str]], rng: np.random.Generator) -> None:
        self.names = sorted(images)
        self.images = images
        self.rng = rng

    def same_capacity(self) -> int:
        return sum(math.comb(len(self.images[n]), 2) for n in self.names)

    def different_capacity(self) -> int:
        sizes = np.array([len(self.images[n]) for n in self.names], dtype=object)
        return int((sizes.sum() ** 2 - (sizes**2).sum()) // 2) if len(sizes) else 0

    def check(self, same: int, different: int, where: str, hint: str) -> None:
        for kind, wanted, capacity, option in (
            ("same", same, self.same_capacity(), "--same"),
            ("different", different, self.different_capacity(), "--different"),
        ):
            if wanted > capacity:
                raise DataError(
                    f"{where} allows at most {capacity} distinct {kind}-identity pairs, but "
                    f"{wanted} were asked for; ask for fewer ({option}), {hint}use fewer folds "
                    f"(--folds) or lower --min-images to keep more identities"
                )

    def same_pairs(self, count: int) -> list[tuple[str, str]]:
        eligible = [n for n in self.names if len(self.images[n]) >= 2]
        queues: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        drawn: list[tuple[str, str]] = []
        while len(drawn) < count:
            index = int(self.rng.integers(len(eligible)))
            name = eligible[index]
            if name not in queues:
                first, second = np.triu_indices(len(self.images[name]), 1)
                order = self.rng.permutation(first.size)
                queues[name] = (first[order], second[order])
            first, second = queues[name]
            images = self.images[name]
            drawn.append((images[first[-1]], images[second[-1]]))
            queues[name] = (first[:-1], second[:-1])
            if first.size == 1:
                eligible.pop(index)
        return drawn

    def different_pairs(self, count: int) -> list[tuple[str, str]]:
        used: set[tuple[str, str]] = set()
        drawn: list[tuple[str, str]] = []
        while len(drawn) < count:
            a, b = sorted(int(i) for i in self.rng.choice(len(self.names), 2, replace=False))
            first, second = self.images[self.names[a]], self.images[self.names[b]]
            pair = (first[int(self.rng.integers(len(first)))], second[int(self.rng.integers(len(second)))])
            if pair not in used:
                used.add(pair)
                drawn.append(pair)
        return drawn


def read_lfw_pairs(path: str | Path) -> pd.DataFrame:
    """LFW's ``pairs.txt`` (or ``pairsDevTrain.txt`` / ``pairsDevTest.txt``) as a pairs table.

    The first line is ``folds<TAB>n`` (``pairs.txt``: ``10 300``) or just ``n`` (one fold); then,
    for each fold, ``n`` same pairs ``name<TAB>i<TAB>j`` and ``n`` different pairs
    ``name1<TAB>i<TAB>name2<TAB>j``. Image ``i`` of ``name`` is ``name/name_000i.jpg``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"LFW pairs file {str(path)!r} does not exist (or is not a file)")
    text = read_utf8(path, "LFW pairs file", DataError)
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: the file is empty; LFW's pairs.txt starts with a line like '10<TAB>300'")
    header = lines[0]
    if not 1 <= len(header) <= 2 or not all(field.isdigit() and int(field) > 0 for field in header):
        raise DataError(
            f"{path}, line 1: expected LFW's header 'folds<TAB>pairs' (e.g. '10<TAB>300') or "
            f"'pairs', found {' '.join(header)!r}; is this LFW's pairs.txt?"
        )
    folds, n = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise DataError(
            f"{path}: the header announces {folds} folds of {n} same and {n} different pairs "
            f"({folds * 2 * n} lines), but {len(body)} pair lines follow"
        )
    rows = []
    for index, fields in enumerate(body):
        fold, position = divmod(index, 2 * n)
        is_same = position < n
        try:
            if is_same and len(fields) == 3:
                name, first, second = fields
                rows.append((_lfw_image(name, first), _lfw_image(name, second), 1, fold + 1))
                continue
            if not is_same and len(fields) == 4:
                name1, first, name2, second = fields
                rows.append((_lfw_image(name1, first), _lfw_image(name2, second), 0, fold + 1))
                continue
        except ValueError:
            pass
        expected = (
            "'name<TAB>i<TAB>j' (a same pair)"
            if is_same
            else "'name1<TAB>i<TAB>name2<TAB>j' (a different pair)"
        )
        raise DataError(
            f"{path}, line {index + 2}: expected {expected} as line {position + 1} of fold {fold + 1}, "
            f"found {' '.join(fields)!r}"
        )
    return pd.DataFrame(rows, columns=list(PAIR_COLUMNS))


def _lfw_image(name: str, number: str) -> str:
    if not number.isdigit() or int(number) < 1:
        raise ValueError(number)
    return f"{name}/{name}_{int(number):04d}.jpg"


def pairs_images_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The images table (``image, identity``) of the images in ``pairs``, identity = top folder."""
    images = sorted(pd.unique(pairs[["img1", "img2"]].to_numpy().ravel()))
    return pd.DataFrame([(image, image.split("/")[0]) for image in images], columns=list(TABLE_COLUMNS))


def missing_images(pairs: pd.DataFrame, images_dir: str | Path) -> list[str]:
    """The images of ``pairs`` that are not files in ``images_dir``."""
    root = Path(images_dir)
    return [
        image
        for image in pd.unique(pairs[["img1", "img2"]].to_numpy().ravel())
        if not (root / image).is_file()
    ]
