"""Identification / retrieval: rank each query's true match among every candidate.

The pairs file lists query-match pairs (``img1``, ``img2``), optionally with a same/different
label column (only the "same" rows are queries then; the "different" rows still add their
images as candidates). Each direction is scored on its own, never combined:

- ``img1 to img2``: each pair's ``img1`` is a query; the candidates are every distinct image of
  the ``img2`` column; the pair's ``img2`` is the true match;
- ``img2 to img1``: the other way round.

A query's rank is 1 + the number of candidates at a distance *smaller than or equal to* its
true match (ties count against it, so ties never flatter). Candidates that are the query image
itself, or another true match of the same query (a second pair with the same query), are left
out. Top-k accuracy is the share of queries ranked k or better; MRR is the mean of 1/rank.

The task needs the distance of every query to every candidate, not only of the listed pairs,
so its ``pairs_df`` is the full grid of (img1 image, img2 image) combinations: the manager
computes every grid distance with the usual per-pair machinery (each image is still embedded
once). The query pairs themselves are in :attr:`RetrievalTask.query_pairs`. Grid distances
are read in both directions, which assumes a symmetric metric (all registered ones are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.pairs import IMAGE_COLUMNS, binary_labels
from facebench.task import BaseTask

DIRECTIONS = (("img1", "img2"), ("img2", "img1"))
MAX_GRID_PAIRS = 25_000_000


def direction_name(query_column: str, candidate_column: str) -> str:
    return f"{query_column} to {candidate_column}"


def top_k_column(k: int, query_column: str, candidate_column: str) -> str:
    return f"Top-{k} Accuracy ({direction_name(query_column, candidate_column)})"


def mrr_column(query_column: str, candidate_column: str) -> str:
    return f"Mean Reciprocal Rank ({direction_name(query_column, candidate_column)})"


def match_ranks(
    distances: np.ndarray,
    queries: Sequence[int],
    matches: Sequence[int],
    excluded: Sequence[Sequence[int]] = (),
) -> np.ndarray:
    """The rank of ``matches[i]`` in row ``queries[i]`` of the query x candidate ``distances``.

    Rank = number of candidates, the match included, at a distance <= the match's;
    ``excluded[i]`` lists candidate columns left out for query ``i``.
    """
    rows = distances[np.asarray(queries, dtype=int)]
    match_distances = rows[np.arange(len(rows)), np.asarray(matches, dtype=int)]
    competing = rows <= match_distances[:, None]
    for i, columns in enumerate(excluded):
        if len(columns):
            competing[i, np.asarray(columns, dtype=int)] = False
    competing[np.arange(len(rows)), np.asarray(matches, dtype=int)] = True
    return competing.sum(axis=1)


class RetrievalTask(BaseTask):
    """Top-k identification accuracy and mean reciprocal rank, for each direction separately."""

    plot_columns: ClassVar[tuple[str, ...]] = (
        top_k_column(1, "img1", "img2"),
        top_k_column(1, "img2", "img1"),
        mrr_column("img1", "img2"),
        mrr_column("img2", "img1"),
    )

    def __init__(
        self,
        name: str | None = None,
        *,
        label_column: str | None = None,
        top_k: Sequence[int] = (1, 5),
        **common: Any,
    ) -> None:
        self.label_column = label_column
        self.top_k = tuple(sorted({int(k) for k in top_k}))
        if not self.top_k or self.top_k[0] < 1:
            raise ConfigError(f"top_k must list positive integers, got {list(top_k)!r}")
        self.query_pairs = pd.DataFrame(columns=list(IMAGE_COLUMNS))
        self.candidates: dict[str, list[str]] = {}
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        return (*self.required_columns, self.label_column) if self.label_column else self.required_columns

    def column_options(self) -> dict[str, str]:
        return {self.label_column: "label_column"} if self.label_column else {}

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Keep the query pairs; return the img1-image x img2-image grid to compute distances for."""
        queries = frame
        if self.label_column:
            labels = binary_labels(frame, self.label_column, self.pairs_file_path)
            queries = frame[labels.astype(bool)]
            if queries.empty:
                raise DataError(
                    f"{self.pairs_file_path}: no row of column {self.label_column!r} is labelled same, "
                    f"so there is no query-match pair to rank"
                )
        self.query_pairs = queries[list(IMAGE_COLUMNS)].reset_index(drop=True)
        self.candidates = {column: list(pd.unique(frame[column])) for column in IMAGE_COLUMNS}
        rows, cols = self.candidates["img1"], self.candidates["img2"]
        if len(rows) * len(cols) > MAX_GRID_PAIRS:
            raise DataError(
                f"{self.pairs_file_path}: {len(rows)} x {len(cols)} query-candidate distances is more "
                f"than this task computes ({MAX_GRID_PAIRS:,}); split the pairs file"
            )
        return pd.DataFrame(
            {"img1": np.repeat(rows, len(cols)), "img2": np.tile(np.asarray(cols, dtype=object), len(rows))}
        )

    def distance_matrix(self, pairs_distances_df: pd.DataFrame) -> np.ndarray:
        """The img1-candidate x img2-candidate distances, from the grid rows (in any order)."""
        rows, cols = self.candidates["img1"], self.candidates["img2"]
        distances = self.pair_distances(pairs_distances_df)
        row_index = pd.Index(rows).get_indexer(pairs_distances_df["img1"])
        col_index = pd.Index(cols).get_indexer(pairs_distances_df["img2"])
        matrix = np.full((len(rows), len(cols)), np.nan)
        known = (row_index >= 0) & (col_index >= 0)
        matrix[row_index[known], col_index[known]] = distances[known]
        if np.isnan(matrix).any():
            raise DataError(
                f"task {self.name!r}: {int(np.isnan(matrix).sum())} query-candidate distances are "
                f"missing; the task needs distances for its whole pairs_df grid"
            )
        return matrix

    def direction_ranks(self, matrix: np.ndarray, query_column: str, candidate_column: str) -> np.ndarray:
        """Each query pair's rank in one direction (``matrix`` is img1 x img2)."""
        if query_column == "img2":
            matrix = matrix.T
        query_names = self.candidates[query_column]
        candidate_names = self.candidates[candidate_column]
        query_index = {name: i for i, name in enumerate(query_names)}
        candidate_index = {name: i for i, name in enumerate(candidate_names)}
        queries = [query_index[q] for q in self.query_pairs[query_column]]
        matches = [candidate_index[m] for m in self.query_pairs[candidate_column]]
        true_matches: dict[str, set[int]] = {}
        for query, match in zip(self.query_pairs[query_column], matches, strict=True):
            true_matches.setdefault(query, set()).add(match)
        excluded = []
        for query, match in zip(self.query_pairs[query_column], matches, strict=True):
            others = true_matches[query] - {match}
            if query in candidate_index:  # the query image itself is no candidate
                others.add(candidate_index[query])
            excluded.append(sorted(others - {match}))
        return match_ranks(matrix, queries, matches, excluded)

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        matrix = self.distance_matrix(pairs_distances_df)
        row: dict[str, Any] = {}
        for query_column, candidate_column in DIRECTIONS:
            ranks = self.direction_ranks(matrix, query_column, candidate_column)
            for k in self.top_k:
                row[top_k_column(k, query_column, candidate_column)] = float(np.mean(ranks <= k))
            row[mrr_column(query_column, candidate_column)] = float(np.mean(1.0 / ranks))
            row[f"Candidates ({direction_name(query_column, candidate_column)})"] = len(
                self.candidates[candidate_column]
            )
        row["Queries"] = len(self.query_pairs)
        return self.result_row(row)
