"""``facebench pairs``: pairs drawn from a one-folder-per-identity dataset, and LFW's pairs.txt."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from facebench.cli import main
from facebench.errors import DataError
from facebench.pair_maker import make_pairs, read_lfw_pairs, scan_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pairs"


def image_bytes(text: str) -> bytes:
    """A tiny PNG whose pixels (and so bytes) depend on ``text``."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
    pixels = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def make_dataset(root: Path, sizes: dict[str, int]) -> Path:
    """``root/<identity>/<identity>_<i>.jpg``: tiny images with distinct bytes."""
    for name, count in sizes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (root / name / f"{name}_{i:04d}.jpg").write_bytes(image_bytes(f"{name}-{i}"))
    return root


def identity(image: str) -> str:
    return image.split("/")[0]


def unordered(frame: pd.DataFrame) -> list[frozenset[str]]:
    return [frozenset(pair) for pair in zip(frame["img1"], frame["img2"], strict=True)]


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "faces", {f"person{i:02d}": 3 + i % 3 for i in range(12)})


def test_counts_balance_and_labels(dataset_dir: Path) -> None:
    pairs = make_pairs(scan_dataset(dataset_dir), folds=3, same=4, different=5, seed=1)
    assert list(pairs.columns) == ["img1", "img2", "same", "fold"]
    assert len(pairs) == 3 * (4 + 5)
    for fold in (1, 2, 3):
        in_fold = pairs[pairs["fold"] == fold]
        assert (in_fold["same"] == 1).sum() == 4
        assert (in_fold["same"] == 0).sum() == 5
        # LFW's order: each fold's same pairs first
        assert in_fold["same"].tolist() == [1] * 4 + [0] * 5
    assert pairs["fold"].is_monotonic_increasing
    same_identity = pairs["img1"].map(identity) == pairs["img2"].map(identity)
    assert (same_identity == (pairs["same"] == 1)).all()
    assert (pairs["img1"] != pairs["img2"]).all()
    assert len(set(unordered(pairs))) == len(pairs), "no pair is drawn twice"
    for image in pd.concat([pairs["img1"], pairs["img2"]]):
        assert (dataset_dir / image).is_file()


def test_same_seed_same_pairs_other_seed_other_pairs(dataset_dir: Path) -> None:
    dataset = scan_dataset(dataset_dir)
    first = make_pairs(dataset, folds=2, same=5, different=5, seed=7)
    pd.testing.assert_frame_equal(
        first, make_pairs(scan_dataset(dataset_dir), folds=2, same=5, different=5, seed=7)
    )
    assert not first.equals(make_pairs(dataset, folds=2, same=5, different=5, seed=8))


def test_disjoint_folds_share_no_identity(dataset_dir: Path) -> None:
    pairs = make_pairs(scan_dataset(dataset_dir), folds=3, same=3, different=3, seed=0, disjoint=True)
    people = {
        fold: set(group["img1"].map(identity)) | set(group["img2"].map(identity))
        for fold, group in pairs.groupby("fold")
    }
    assert len(people) == 3
    for a in people:
        for b in people:
            if a != b:
                assert not people[a] & people[b]
    # without --disjoint, folds draw from everyone (this seed mixes them)
    shared = make_pairs(scan_dataset(dataset_dir), folds=3, same=3, different=3, seed=0)
    folds = [set(g["img1"].map(identity)) | set(g["img2"].map(identity)) for _, g in shared.groupby("fold")]
    assert any(folds[a] & folds[b] for a in range(3) for b in range(a + 1, 3))


def test_identical_bytes_count_once_and_near_empty_identities_are_skipped(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "faces", {"ann": 2, "bob": 3, "cat": 2, "dan": 1})
    (root / "empty").mkdir()
    (root / "ann" / "copy_of_ann_0000.jpg").write_bytes((root / "ann" / "ann_0000.jpg").read_bytes())
    # the same bytes filed under two people: its identity is unknown, every copy is left out
    (root / "cat" / "cat_0002.jpg").write_bytes(image_bytes("shared"))
    (root / "bob" / "bob_0003.jpg").write_bytes(image_bytes("shared"))
    (root / "loose.jpg").write_bytes(image_bytes("loose"))
    dataset = scan_dataset(root)
    assert dataset.duplicates == 1
    assert dataset.conflicts == 2
    assert dataset.loose_files == 1
    assert sorted(dataset.skipped) == ["dan", "empty"]
    assert dataset.images == {
        "ann": ["ann/ann_0000.jpg", "ann/ann_0001.jpg"],
        "bob": ["bob/bob_0000.jpg", "bob/bob_0001.jpg", "bob/bob_0002.jpg"],
        "cat": ["cat/cat_0000.jpg", "cat/cat_0001.jpg"],
    }
    summary = dataset.summary()
    assert "1 duplicate files" in summary and "2 identities with fewer than 2 images skipped" in summary
    # all 1 + 3 + 1 same pairs exist once each: the duplicate is never paired with its original
    pairs = make_pairs(dataset, folds=1, same=5, different=2, seed=0)
    assert len(set(unordered(pairs[pairs["same"] == 1]))) == 5
    assert "ann/copy_of_ann_0000.jpg" not in set(pairs["img1"]) | set(pairs["img2"])
    with_singletons = scan_dataset(root, min_images=1)
    assert "dan" in with_singletons.images and with_singletons.skipped == ["empty"]


def test_impossible_requests_say_what_the_dataset_allows(tmp_path: Path) -> None:
    dataset = scan_dataset(make_dataset(tmp_path / "faces", {"ann": 2, "bob": 3, "cat": 2}))
    with pytest.raises(DataError, match=r"at most 5 distinct same-identity pairs, but 6 were asked for"):
        make_pairs(dataset, folds=2, same=3, different=1)
    with pytest.raises(DataError, match=r"at most 16 distinct different-identity pairs, but 20"):
        make_pairs(dataset, folds=2, same=1, different=10)
    with pytest.raises(DataError, match=r"3 identities cannot be split into 4 identity-disjoint folds"):
        make_pairs(dataset, folds=4, same=1, different=1, disjoint=True)
    # exactly the capacity works and gives every pair once
    pairs = make_pairs(dataset, folds=1, same=5, different=16, seed=3)
    assert len(set(unordered(pairs))) == 21


def test_lfw_pairs_txt_conversion() -> None:
    pairs = read_lfw_pairs(FIXTURES / "lfw_pairs.txt")
    assert len(pairs) == 12
    assert pairs["fold"].tolist() == [1] * 6 + [2] * 6
    assert pairs["same"].tolist() == [1, 1, 1, 0, 0, 0] * 2
    # the rows LFW's images are named by (as in the seed lab's converted LFW file)
    assert pairs.iloc[0][["img1", "img2"]].tolist() == [
        "Abel_Pacheco/Abel_Pacheco_0001.jpg",
        "Abel_Pacheco/Abel_Pacheco_0004.jpg",
    ]
    assert pairs.iloc[3][["img1", "img2"]].tolist() == [
        "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
        "Dean_Barker/Dean_Barker_0001.jpg",
    ]
    assert pairs.iloc[8][["img1", "img2"]].tolist() == [
        "Abdullah_Gul/Abdullah_Gul_0007.jpg",
        "Abdullah_Gul/Abdullah_Gul_0014.jpg",
    ]


def test_lfw_errors_name_the_line(tmp_path: Path) -> None:
    lines = (FIXTURES / "lfw_pairs.txt").read_text().splitlines()
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DataError, match="announces 2 folds of 3 same and 3 different pairs"):
        read_lfw_pairs(short)
    swapped = tmp_path / "swapped.txt"
    swapped.write_text("\n".join([lines[0], lines[4], *lines[2:4], lines[1], *lines[5:]]) + "\n")
    with pytest.raises(DataError, match=r"line 2: expected 'name<TAB>i<TAB>j' \(a same pair\)"):
        read_lfw_pairs(swapped)
    with pytest.raises(DataError, match=r"is this LFW's pairs\.txt"):
        read_lfw_pairs(FIXTURES.parents[0] / "tasks" / "lfw_pairs_head.txt")


def test_cli_writes_files_the_accuracy_task_reads(dataset_dir: Path, tmp_path: Path) -> None:
    from facebench_tasks.accuracy import AccuracyTask
    from facebench_tasks.stats import contiguous_folds

    output, table = tmp_path / "pairs.csv", tmp_path / "images.csv"
    result = CliRunner().invoke(
        main,
        [
            *("pairs", str(dataset_dir), "--output", str(output), "--table", str(table)),
            *("--folds", "4", "--same", "3", "--different", "2", "--seed", "5"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "12 identities, 48 distinct images" in result.output
    assert "Wrote 20 pairs (12 same, 8 different) in 4 folds" in result.output
    task = AccuracyTask(label_column="same", n_folds=4, pairs_file_path=output, images_path=dataset_dir)
    # the task's LFW-style contiguous folds are the file's folds
    folds = [set(fold) for fold in contiguous_folds(task.pairs_df["same"].to_numpy(bool), 4)]
    assert folds == [set(np.flatnonzero(task.pairs_df["fold"] == k)) for k in (1, 2, 3, 4)]
    images = pd.read_csv(table)
    assert list(images.columns) == ["image", "identity"] and len(images) == 48
    assert (images["image"].map(identity) == images["identity"]).all()


def test_cli_lfw_conversion_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    output = tmp_path / "lfw.csv"
    result = runner.invoke(
        main, ["pairs", "--from-lfw", str(FIXTURES / "lfw_pairs.txt"), "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(output), read_lfw_pairs(FIXTURES / "lfw_pairs.txt"))
    result = runner.invoke(
        main, ["pairs", "--from-lfw", str(FIXTURES / "lfw_pairs.txt"), "--output", "x", "--seed", "2"]
    )
    assert result.exit_code == 2 and "--seed cannot apply" in result.output
    result = runner.invoke(
        main, ["pairs", str(tmp_path), "--from-lfw", str(FIXTURES / "lfw_pairs.txt"), "--output", "x"]
    )
    assert result.exit_code == 2 and "19 images of" in result.output
    result = runner.invoke(main, ["pairs", str(tmp_path / "nowhere"), "--output", str(output)])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_accuracy_fold_column_uses_the_files_folds(dataset_dir: Path, tmp_path: Path) -> None:
    from facebench_tasks.accuracy import AccuracyTask
    from facebench_tasks.stats import accuracy_at_threshold, best_accuracy_threshold

    pairs = make_pairs(scan_dataset(dataset_dir), folds=4, same=5, different=5, seed=2)
    rng = np.random.default_rng(0)
    pairs["model_computed_distance"] = rng.uniform(0, 1, len(pairs)) - 0.3 * pairs["same"]
    shuffled = pairs.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled.drop(columns="model_computed_distance").to_csv(tmp_path / "shuffled.csv", index=False)
    common = {"pairs_file_path": tmp_path / "shuffled.csv", "images_path": dataset_dir}
    by_column = AccuracyTask(label_column="same", fold_column="fold", **common)
    result = by_column.compute_task_performance(shuffled)
    labels, scores = shuffled["same"].to_numpy(bool), 1.0 - shuffled["model_computed_distance"].to_numpy()
    expected = []
    for fold in (1, 2, 3, 4):
        held_out = shuffled["fold"].to_numpy() == fold
        threshold = best_accuracy_threshold(labels[~held_out], scores[~held_out])
        expected.append(accuracy_at_threshold(labels[held_out], scores[held_out], threshold))
    assert result["Cross-Validated Accuracy"].iloc[0] == pytest.approx(np.mean(expected))
    assert result["Cross-Validated Accuracy Std"].iloc[0] == pytest.approx(np.std(expected))
    # the file in make_pairs' own order: contiguous folds give the same figure
    pairs.drop(columns="model_computed_distance").to_csv(tmp_path / "ordered.csv", index=False)
    ordered = AccuracyTask(
        label_column="same", n_folds=4, pairs_file_path=tmp_path / "ordered.csv", images_path=dataset_dir
    )
    contiguous = ordered.compute_task_performance(pairs)
    assert contiguous["Cross-Validated Accuracy"].iloc[0] == pytest.approx(np.mean(expected))


def test_only_files_that_decode_as_images_are_counted(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "faces", {"ann": 2, "bob": 2})
    (root / "ann" / "notes.jpg").write_text("a text file named like an image")
    (root / "bob" / "cut.png").write_bytes(image_bytes("cut")[:30])
    dataset = scan_dataset(root)
    assert dataset.images == {
        "ann": ["ann/ann_0000.jpg", "ann/ann_0001.jpg"],
        "bob": ["bob/bob_0000.jpg", "bob/bob_0001.jpg"],
    }
    assert dataset.undecodable == 2
    assert "2 files that do not decode as images left out" in dataset.summary()


def test_a_non_utf8_lfw_pairs_file_is_one_error(tmp_path: Path) -> None:
    latin = tmp_path / "pairs.txt"
    latin.write_bytes("1\t1\nJos\xe9_Garc\xeda\t1\t2\nAnn\t1\tBob\t1\n".encode("latin-1"))
    result = CliRunner().invoke(
        main, ["pairs", "--from-lfw", str(latin), "--output", str(tmp_path / "o.csv")]
    )
    assert result.exit_code == 2, result.output
    assert "is not UTF-8 text (byte 0xE9 on line 2)" in result.output and "Traceback" not in result.output
