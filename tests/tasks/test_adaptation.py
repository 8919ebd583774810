"""The ``adaptation`` task: a map on frozen embeddings, trained on matched pairs, scored held out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facebench_tasks.adaptation import AdaptationTask, both_directions, retrieval_metrics

WritePairs = Callable[..., tuple[Path, Path]]
FAST = {"max_epochs": 200, "patience": 50, "batch_size": 64, "learning_rate": 1e-2, "progress": False}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny maps train faster on one thread (and a busy 2-core machine does not stall them)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def matched(n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Pairs ``a<i>.png`` / ``b<i>.png`` and the row numbers of each in a features matrix."""
    frame = pd.DataFrame({"img1": [f"a{i}.png" for i in range(n)], "img2": [f"b{i}.png" for i in range(n)]})
    return frame, np.arange(n), np.arange(n, 2 * n)


def test_a_hidden_linear_map_is_learned_and_unrelated_pairs_stay_at_chance(write_pairs: WritePairs) -> None:
    n, d = 150, 16
    rng = np.random.default_rng(0)
    frame, rows1, rows2 = matched(n)
    pairs_file, images = write_pairs(frame)
    task = AdaptationTask(pairs_file_path=pairs_file, images_path=images, shared=False, n_folds=3, **FAST)
    a = rng.normal(size=(n, d))
    hidden = rng.normal(size=(d, d)) / np.sqrt(d)
    related = task.score(np.vstack([a, a @ hidden.T + 0.05 * rng.normal(size=(n, d))]), rows1, rows2)
    assert related["Top-1 Mean Before"] < 0.3
    assert related["Top-1 Mean After"] > related["Top-1 Mean Before"] + 0.4
    for metric in ("Top-1", "Top-5", "MRR"):
        for when in ("Before", "After"):
            assert related[f"{metric} Mean {when}"] == pytest.approx(
                (related[f"{metric} img1->img2 {when}"] + related[f"{metric} img2->img1 {when}"]) / 2
            )
    assert related["Test Images Seen In Training"] == 0
    assert related["Folds"] == "3 folds over images"
    unrelated = task.score(np.vstack([a, rng.normal(size=(n, d))]), rows1, rows2)
    chance = unrelated["Chance Top-1"]
    assert unrelated["Top-1 Mean After"] < 4 * chance
    assert unrelated["Top-5 Mean After"] < 0.25


def test_a_shared_map_drops_nuisance_dimensions(write_pairs: WritePairs) -> None:
    """Both images: the same face code in 8 dimensions plus loud, independent nuisance in 16."""
    n = 200
    rng = np.random.default_rng(1)
    frame, rows1, rows2 = matched(n)
    pairs_file, images = write_pairs(frame)
    code = rng.normal(size=(n, 8))

    def embed() -> np.ndarray:
        return np.hstack([code + 0.1 * rng.normal(size=(n, 8)), 2.0 * rng.normal(size=(n, 16))])

    task = AdaptationTask(pairs_file_path=pairs_file, images_path=images, n_folds=3, **FAST)
    row = task.score(np.vstack([embed(), embed()]), rows1, rows2)
    assert row["Top-1 Mean After"] > row["Top-1 Mean Before"] + 0.3
    assert row["MRR Mean After"] > row["MRR Mean Before"]


def brute_force_ranks(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    ranks = []
    for i, query in enumerate(queries):
        cosines = [q @ g / (np.linalg.norm(q) * np.linalg.norm(g)) for q, g in ((query, g) for g in gallery)]
        ranks.append(1 + sum(cosines[j] >= cosines[i] for j in range(len(gallery)) if j != i))
    return np.array(ranks)


def test_retrieval_directions_are_computed_separately() -> None:
    """Pair 2 is found both ways, pair 1 only from b1 (a1 is closer to b0), pair 0 neither way:
    the directions differ (1/3 and 2/3), and the mean is not 'either direction' (2/3)."""
    a = np.array([[0.0, 0.5], [0.5, 0.1], [0.6, 0.9]])
    b = np.array([[0.6, 0.3], [0.8, 0.5], [0.5, 0.8]])
    names1, names2 = np.array(["a0", "a1", "a2"]), np.array(["b0", "b1", "b2"])
    forward = retrieval_metrics(a, b, names2)
    backward = retrieval_metrics(b, a, names1)
    for got, (q, g) in ((forward, (a, b)), (backward, (b, a))):
        ranks = brute_force_ranks(q, g)
        assert got["Top-1"] == pytest.approx(np.mean(ranks == 1))
        assert got["MRR"] == pytest.approx(np.mean(1 / ranks))
    assert forward["Top-1"] == pytest.approx(1 / 3)
    assert backward["Top-1"] == pytest.approx(2 / 3)
    row = both_directions(a, b, names1, names2)
    assert row["Top-1 img1->img2"] == forward["Top-1"] and row["Top-1 img2->img1"] == backward["Top-1"]
    assert row["Top-1 Mean"] == pytest.approx(0.5)  # "either direction right" would say 2/3


def test_the_same_image_twice_in_the_gallery_is_not_its_own_rival() -> None:
    features = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # queries 0 and 1 both match the same gallery image "g0"; identical rows are not rivals
    assert retrieval_metrics(features, features, np.array(["g0", "g0", "g2"]))["Top-1"] == 1.0
    # two different files with identical embeddings: a tie counts against the match
    assert retrieval_metrics(features, features, np.array(["g0", "g1", "g2"]))["Top-1"] == pytest.approx(
        1 / 3
    )


def test_human_similarity_variant_improves_held_out_correlation(write_pairs: WritePairs) -> None:
    """Human distances follow a 3-dimensional face code the embeddings bury under nuisance."""
    rng = np.random.default_rng(2)
    n_images = 24
    code = rng.normal(size=(n_images, 3))
    features = np.hstack([code, 2.0 * rng.normal(size=(n_images, 12))])
    pairs = list(combinations(range(n_images), 2))
    unit = code / np.linalg.norm(code, axis=1, keepdims=True)
    human = [float(1.0 - unit[i] @ unit[j]) for i, j in pairs]
    frame = pd.DataFrame(
        {"img1": [f"{i}.png" for i, _ in pairs], "img2": [f"{j}.png" for _, j in pairs], "distance": human}
    )
    pairs_file, images = write_pairs(frame)
    task = AdaptationTask(
        pairs_file_path=pairs_file,
        images_path=images,
        objective="similarity",
        correlation="spearman",
        n_folds=3,
        **FAST,
    )
    rows1 = np.array([i for i, _ in pairs])
    rows2 = np.array([j for _, j in pairs])
    row = task.score(features, rows1, rows2)
    assert row["Correlation After"] > row["Correlation Before"] + 0.2
    # image folds: every held-out pair has an image training never saw
    for train, test in task.splits():
        train_images = set(frame["img1"][train]) | set(frame["img2"][train])
        assert all(
            a not in train_images or b not in train_images
            for a, b in zip(frame["img1"][test], frame["img2"][test], strict=True)
        )


def test_split_column_and_seeded_training(write_pairs: WritePairs) -> None:
    n, d = 60, 8
    rng = np.random.default_rng(3)
    frame, rows1, rows2 = matched(n)
    frame["split"] = ["train"] * 40 + ["Test "] * 20
    pairs_file, images = write_pairs(frame)
    task = AdaptationTask(pairs_file_path=pairs_file, images_path=images, split_column="split", **FAST)
    [(train, test)] = task.splits()
    assert list(test) == list(range(40, 60)) and list(train) == list(range(40))
    a = rng.normal(size=(n, d))
    features = np.vstack([a, a + 0.5 * rng.normal(size=(n, d))])
    first = task.score(features, rows1, rows2)
    assert first == task.score(features, rows1, rows2), "same seed, same numbers"
    assert first["Held-out Pairs"] == 20 and first["Folds"] == "one split (split)"


def test_match_column_keeps_the_matched_pairs_of_a_verification_file(write_pairs: WritePairs) -> None:
    frame, _, _ = matched(12)
    frame["same"] = [1, 0] * 6
    frame["fold"] = [1, 1, 2, 2, 3, 3] * 2
    pairs_file, images = write_pairs(frame)
    task = AdaptationTask(
        pairs_file_path=pairs_file, images_path=images, match_column="same", fold_column="fold"
    )
    assert list(task.pairs_df["img1"]) == [f"a{i}.png" for i in range(0, 12, 2)]
    assert task.image_names() == [name for i in range(0, 12, 2) for name in (f"a{i}.png", f"b{i}.png")]
    assert [list(test) for _, test in task.splits()] == [[0, 3], [1, 4], [2, 5]]
