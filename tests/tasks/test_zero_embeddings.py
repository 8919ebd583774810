"""All-zero embeddings make distances conventions: a pair task's layer says how many."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from facebench.metrics import ZeroEmbeddingWarning
from facebench.testing import array_view
from facebench_tasks.accuracy import AccuracyTask


def test_zero_embeddings_are_counted_with_the_pairs_that_use_them(write_pairs) -> None:
    names = [f"{i}.png" for i in range(14)]
    frame = pd.DataFrame({"img1": names[:7], "img2": names[7:], "truth": [1, 0, 1, 0, 1, 0, 1]})
    pairs_file, images = write_pairs(frame)
    task = AccuracyTask(pairs_file_path=pairs_file, images_path=images, n_folds=2)
    vectors = np.random.default_rng(0).normal(size=(14, 5))
    vectors[[0, 3, 8]] = 0.0  # e.g. a ReLU layer silent for three faces: pairs 1, 2 and 4 use them
    with pytest.warns(
        ZeroEmbeddingWarning,
        match=r"3 image\(s\) have an all-zero embedding \('0.png', '3.png', '8.png'\); 3 of 7 pairs",
    ):
        result = task.evaluate(array_view(vectors, names, chunk_bytes=4 * 5 * 4))
    # the distances themselves keep the documented conventions (cosine: 1 against a non-zero row)
    assert result.distances["model_computed_distance"].iloc[[0, 1, 3]].tolist() == [1.0, 1.0, 1.0]


def test_no_warning_without_zero_embeddings(write_pairs) -> None:
    names = [f"{i}.png" for i in range(8)]
    frame = pd.DataFrame({"img1": names[:4], "img2": names[4:], "truth": [1, 0, 1, 0]})
    pairs_file, images = write_pairs(frame)
    task = AccuracyTask(pairs_file_path=pairs_file, images_path=images, n_folds=2)
    vectors = np.random.default_rng(1).normal(size=(8, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ZeroEmbeddingWarning)
        task.evaluate(array_view(vectors, names))
