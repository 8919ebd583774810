"""The retrieval task against a plain-loop reference, and the angular metric against scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.spatial.distance import cosine

from facebench.errors import DataError
from facebench.registry import get_registry
from facebench_example.metrics import angular_distance
from facebench_example.retrieval import RetrievalTask


def write_task(tmp_path: Path, rows: list[tuple[str, str, int]], **options: object) -> RetrievalTask:
    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    for name in {n for row in rows for n in row[:2]}:
        Image.new("RGB", (4, 4)).save(images / name)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(rows, columns=["img1", "img2", "same"]).to_csv(pairs, index=False)
    return get_registry().create("task", "retrieval", pairs_file_path=pairs, images_path=images, **options)


def reference_ranks(
    distance: dict[tuple[str, str], float],
    queries: list[str],
    candidates: list[str],
    identity: dict[str, str],
) -> list[int]:
    """Plain loops: per query, 1 + the wrong candidates at <= the nearest correct candidate's
    distance; the query image itself is no candidate; queries without a correct one are skipped."""
    ranks = []
    for query in queries:
        others = [c for c in candidates if c != query]
        correct = [c for c in others if identity[c] == identity[query]]
        if not correct:
            continue
        nearest = min(distance[query, c] for c in correct)
        ranks.append(1 + sum(1 for c in others if c not in correct and distance[query, c] <= nearest))
    return ranks


def components(rows: list[tuple[str, str, int]]) -> dict[str, str]:
    """Identity = the set of images linked by same-labelled rows (a plain flood fill)."""
    images = {n for row in rows for n in row[:2]}
    edges = [(a, b) for a, b, s in rows if s]
    identity: dict[str, str] = {}
    for start in sorted(images):
        if start in identity:
            continue
        stack = [start]
        while stack:
            image = stack.pop()
            if image in identity:
                continue
            identity[image] = start
            stack += [b for a, b in edges if a == image] + [a for a, b in edges if b == image]
    return identity


def test_metrics_equal_a_plain_loop_reference_in_each_direction(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    queries = [f"q{i}.png" for i in range(12)]
    gallery = [f"g{i}.png" for i in range(15)]
    rows = [(q, gallery[i], 1) for i, q in enumerate(queries)]
    rows += [(queries[0], gallery[13], 1), (queries[3], gallery[14], 0), (gallery[2], gallery[5], 0)]
    rows += [(queries[4], gallery[5], 1)]  # two photos of q4's identity among the candidates: g4, g5
    task = write_task(tmp_path, rows, label_column="same", top_k=[1, 5])
    grid = task.pairs_df.copy()
    values = rng.random(len(grid)).round(1)  # coarse values: many ties
    grid["model_computed_distance"] = values
    grid = grid.sample(frac=1, random_state=0)  # the task must not rely on row order
    distance = {(a, b): d for a, b, d in zip(grid.img1, grid.img2, grid.model_computed_distance, strict=True)}
    distance.update({(b, a): d for (a, b), d in list(distance.items())})

    row = task.compute_task_performance(grid).iloc[0]

    identity = components(rows)
    same = [(a, b) for a, b, s in rows if s]
    for query_column, candidate_column in (("img1", "img2"), ("img2", "img1")):
        column = 0 if query_column == "img1" else 1
        query_images = list(dict.fromkeys(pair[column] for pair in same))
        candidates = list(dict.fromkeys(r[1 - column] for r in rows))
        ranks = np.array(reference_ranks(distance, query_images, candidates, identity))
        direction = f"{query_column} to {candidate_column}"
        assert row[f"Top-1 Accuracy ({direction})"] == pytest.approx(np.mean(ranks <= 1))
        assert row[f"Top-5 Accuracy ({direction})"] == pytest.approx(np.mean(ranks <= 5))
        assert row[f"Mean Reciprocal Rank ({direction})"] == pytest.approx(np.mean(1 / ranks))
        assert row[f"Candidates ({direction})"] == len(candidates)
        assert row[f"Queries ({direction})"] == len(ranks)
    assert row["Identity Source"] == "connected components of the same-labelled pairs"
    assert row["Distance Metric"] == "cosine"


def test_directions_are_reported_separately_never_combined(tmp_path: Path) -> None:
    # c.png's nearest candidate is b.png (a.png's match), and b.png's nearest is c.png
    task = write_task(tmp_path, [("a.png", "b.png", 1), ("c.png", "d.png", 1)])
    distances = {
        ("a.png", "b.png"): 0.2,
        ("a.png", "d.png"): 0.5,
        ("c.png", "b.png"): 0.1,
        ("c.png", "d.png"): 0.3,
    }
    grid = task.pairs_df.copy()
    grid["model_computed_distance"] = [distances[a, b] for a, b in zip(grid.img1, grid.img2, strict=True)]
    row = task.compute_task_performance(grid).iloc[0]
    assert row["Top-1 Accuracy (img1 to img2)"] == 0.5  # c.png ranks b.png first
    assert row["Top-1 Accuracy (img2 to img1)"] == 0.5  # b.png ranks c.png first
    assert row["Mean Reciprocal Rank (img1 to img2)"] == pytest.approx((1 + 1 / 2) / 2)


def test_pairs_df_is_the_full_query_candidate_grid(tmp_path: Path) -> None:
    task = write_task(tmp_path, [("a.png", "b.png", 1), ("c.png", "d.png", 1), ("e.png", "d.png", 1)])
    assert len(task.pairs_df) == 3 * 2
    assert set(zip(task.pairs_df.img1, task.pairs_df.img2, strict=True)) == {
        (q, c) for q in ("a.png", "c.png", "e.png") for c in ("b.png", "d.png")
    }
    img1, img2 = task.image_paths()
    assert len(img1) == len(img2) == 6


def test_missing_grid_distances_are_a_data_error(tmp_path: Path) -> None:
    task = write_task(tmp_path, [("a.png", "b.png", 1), ("c.png", "d.png", 1)])
    grid = task.pairs_df.iloc[:3].copy()
    grid["model_computed_distance"] = 0.5
    with pytest.raises(DataError, match="1 query-candidate distances are missing"):
        task.compute_task_performance(grid)


def test_angular_distance_equals_scipy_reference() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 16)), rng.normal(size=(6, 16))
    b[0] = 3 * a[0]  # parallel: 0
    b[1] = -a[1]  # opposite: 1
    expected = [np.arccos(np.clip(1 - cosine(x, y), -1, 1)) / np.pi for x, y in zip(a, b, strict=True)]
    got = angular_distance(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-7)
    assert got[0] == pytest.approx(0, abs=1e-6) and got[1] == pytest.approx(1, abs=1e-6)


def lfw_task(tmp_path: Path, with_identities: bool) -> RetrievalTask:
    """280 pairs of LFW's first fold (140 same, 140 different), as published: many people have
    several photos, so a query's nearest candidate is often another photo of the same person."""
    frame = pd.read_csv(Path(__file__).parent / "fixtures" / "lfw_fold1_280_pairs.csv")
    images = tmp_path / "images"
    for name in pd.unique(frame[["img1", "img2"]].to_numpy().ravel()):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(images / name)
    options: dict[str, object] = {"label_column": "same"}
    if with_identities:
        frame["id1"] = frame["img1"].str.split("/").str[0]
        frame["id2"] = frame["img2"].str.split("/").str[0]
        options["identity_columns"] = ["id1", "id2"]
    pairs = tmp_path / "pairs.csv"
    frame.to_csv(pairs, index=False)
    return get_registry().create("task", "retrieval", pairs_file_path=pairs, images_path=images, **options)


@pytest.mark.parametrize("with_identities", [True, False])
def test_a_perfect_oracle_scores_one_on_real_lfw_pairs(tmp_path: Path, with_identities: bool) -> None:
    task = lfw_task(tmp_path, with_identities)
    grid = task.pairs_df.copy()
    same_person = [
        task.identities[a] == task.identities[b] for a, b in zip(grid.img1, grid.img2, strict=True)
    ]
    grid["model_computed_distance"] = np.where(same_person, 0.1, 0.9)  # separates every identity
    row = task.compute_task_performance(grid).iloc[0]
    for query_column, candidate_column in (("img1", "img2"), ("img2", "img1")):
        direction = f"{query_column} to {candidate_column}"
        assert row[f"Top-1 Accuracy ({direction})"] == 1.0
        assert row[f"Mean Reciprocal Rank ({direction})"] == 1.0
        assert row[f"Queries ({direction})"] == task.query_pairs[query_column].nunique()  # distinct images
    expected = (
        "identity columns id1, id2" if with_identities else "connected components of the same-labelled pairs"
    )
    assert row["Identity Source"] == expected


def test_identities_from_columns_are_checked_against_labels(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        Image.new("RGB", (4, 4)).save(images / name)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "img1": ["a.png", "a.png"],
            "img2": ["b.png", "c.png"],
            "same": [1, 0],
            "id1": ["x", "x"],
            "id2": ["x", "x"],
        }
    ).to_csv(pairs, index=False)
    with pytest.raises(
        DataError, match=r"1 rows are labelled same/different in 'same' against their identities"
    ):
        get_registry().create(
            "task",
            "retrieval",
            pairs_file_path=pairs,
            images_path=images,
            label_column="same",
            identity_columns=["id1", "id2"],
        )
