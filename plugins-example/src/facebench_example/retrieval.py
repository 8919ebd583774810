"""Identification / retrieval: does the nearest candidate show the query's identity?

The pairs file lists query-match pairs (``img1``, ``img2``), optionally with a same/different
label column (only the "same" rows are queries then; the "different" rows still add their
images as candidates). Each direction is scored on its own, never combined:

- ``img1 to img2``: every distinct ``img1`` image of a query pair is a query; the candidates are
  every distinct image of the ``img2`` column;
- ``img2 to img1``: the other way round.

A candidate is correct when it shows the query's identity. Identities come from
``identity_columns=(img1's, img2's)`` when the file has them; otherwise from the pairs: images
joined by same-labelled pairs (every pair without a label column) are one person (the connected
components of the "same" graph), and images never linked by such a chain are taken to be
different people, so two photos of one person that no same pair connects count as a wrong
answer. The output's ``Identity Source`` says which was used.

A query's rank is 1 + the number of wrong candidates at a distance *smaller than or equal to*
its nearest correct candidate (ties count against it, so ties never flatter). The query image
itself is never a candidate; a query whose identity has no other image among the candidates is
left out (``Queries`` counts the ones scored). Top-k accuracy is the share of queries ranked k
or better; MRR is the mean of 1/rank.

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
from facebench.pairs import IMAGE_COLUMNS, binary_labels, text_column
from facebench.task import BaseTask

DIRECTIONS = (("img1", "img2"), ("img2", "img1"))
MAX_GRID_PAIRS = 25_000_000


def direction_name(query_column: str, candidate_column: str) -> str:
    return f"{query_column} to {candidate_column}"


def top_k_column(k: int, query_column: str, candidate_column: str) -> str:
    return f"Top-{k} Accuracy ({direction_name(query_column, candidate_column)})"


def mrr_column(query_column: str, candidate_column: str) -> str:
    return f"Mean Reciprocal Rank ({direction_name(query_column, candidate_column)})"


def identity_ranks(distances: np.ndarray, correct: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per query row of ``distances`` (queries x candidates): 1 + the wrong candidates at a
    distance <= the nearest correct one. ``correct`` marks the correct candidates, ``candidate``
    the columns that compete at all (the query image itself does not); each row needs one
    correct candidate."""
    nearest = np.where(correct, distances, np.inf).min(axis=1)
    wrong = candidate & ~correct
    return 1 + (wrong & (distances <= nearest[:, None])).sum(axis=1)


def connected_identities(img1: Sequence[str], img2: Sequence[str]) -> dict[str, str]:
    """Each image's identity as its connected component in the graph of ``(img1, img2)``
    edges, named by one of the component's images."""
    parent: dict[str, str] = {}

    def root(image: str) -> str:
        parent.setdefault(image, image)
        while parent[image] != image:
            parent[image] = parent[parent[image]]
            image = parent[image]
        return image

    for a, b in zip(img1, img2, strict=True):
        first, second = root(a), root(b)
        if first != second:
            parent[second] = first
    return {image: root(image) for image in list(parent)}


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
        identity_columns: Sequence[str] | None = None,
        top_k: Sequence[int] = (1, 5),
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``label_column``: only rows labelled same (1/true) in this column are queries.
        - ``identity_columns``: the identity columns of img1 and img2, e.g. [id1, id2].
        - ``top_k``: the k of the Top-k accuracies reported.
        """
        if identity_columns is not None and (isinstance(identity_columns, str) or len(identity_columns) != 2):
            raise ConfigError(
                f"identity_columns must name two columns, the identity of img1 and of img2 "
                f"(e.g. [id1, id2]); got {identity_columns!r}"
            )
        self.label_column = label_column
        self.identity_columns = tuple(identity_columns) if identity_columns is not None else None
        self.top_k = tuple(sorted({int(k) for k in top_k}))
        if not self.top_k or self.top_k[0] < 1:
            raise ConfigError(f"top_k must list positive integers, got {list(top_k)!r}")
        self.query_pairs = pd.DataFrame(columns=list(IMAGE_COLUMNS))
        self.candidates: dict[str, list[str]] = {}
        self.identities: dict[str, str] = {}
        self.identity_source = ""
        super().__init__(name, **common)

    def columns(self) -> tuple[str, ...]:
        label = (self.label_column,) if self.label_column else ()
        return (*self.required_columns, *label, *(self.identity_columns or ()))

    def column_options(self) -> dict[str, str]:
        options = {self.label_column: "label_column"} if self.label_column else {}
        options.update(dict.fromkeys(self.identity_columns or (), "identity_columns"))
        return options

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Keep the query pairs and every image's identity; return the img1-image x img2-image
        grid to compute distances for."""
        same = np.ones(len(frame), dtype=bool)
        if self.label_column:
            same = binary_labels(frame, self.label_column, self.pairs_file_path).astype(bool)
            if not same.any():
                raise DataError(
                    f"{self.pairs_file_path}: no row of column {self.label_column!r} is labelled same, "
                    f"so there is no query-match pair to rank"
                )
        self.query_pairs = frame[same][list(IMAGE_COLUMNS)].reset_index(drop=True)
        self.candidates = {column: list(pd.unique(frame[column])) for column in IMAGE_COLUMNS}
        if self.identity_columns:
            self.identities = self._identities_from_columns(frame, same)
            self.identity_source = f"identity columns {self.identity_columns[0]}, {self.identity_columns[1]}"
        else:
            self.identities = connected_identities(self.query_pairs["img1"], self.query_pairs["img2"])
            for image in (*self.candidates["img1"], *self.candidates["img2"]):
                self.identities.setdefault(image, image)
            kind = "same-labelled pairs" if self.label_column else "pairs"
            self.identity_source = f"connected components of the {kind}"
        rows, cols = self.candidates["img1"], self.candidates["img2"]
        if len(rows) * len(cols) > MAX_GRID_PAIRS:
            raise DataError(
                f"{self.pairs_file_path}: {len(rows)} x {len(cols)} query-candidate distances is more "
                f"than this task computes ({MAX_GRID_PAIRS:,}); split the pairs file"
            )
        return pd.DataFrame(
            {"img1": np.repeat(rows, len(cols)), "img2": np.tile(np.asarray(cols, dtype=object), len(rows))}
        )

    def _identities_from_columns(self, frame: pd.DataFrame, same: np.ndarray) -> dict[str, str]:
        """Image -> identity from ``identity_columns``, checked against itself and the labels."""
        first, second = self.identity_columns or ("", "")
        ids = [text_column(frame, column, self.pairs_file_path).to_numpy() for column in (first, second)]
        identities: dict[str, str] = {}
        clashes: list[str] = []
        for images, labels in zip((frame["img1"], frame["img2"]), ids, strict=True):
            for image, identity in zip(images, labels, strict=True):
                if identities.setdefault(image, identity) != identity and len(clashes) < 5:
                    clashes.append(f"{image!r} ({identities[image]!r} and {identity!r})")
        if clashes:
            raise DataError(
                f"{self.pairs_file_path}: an image must have one identity, but these have two: "
                f"{', '.join(clashes)}; check columns {first!r} and {second!r}"
            )
        if self.label_column:
            disagree = np.flatnonzero((ids[0] == ids[1]) != same)
            if disagree.size:
                raise DataError(
                    f"{self.pairs_file_path}: {disagree.size} rows are labelled same/different in "
                    f"{self.label_column!r} against their identities in {first!r} and {second!r} "
                    f"(first at pair {disagree[0] + 1})"
                )
        return identities

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
        """The rank of every query (each distinct query image with another image of its identity
        among the candidates) in one direction; ``matrix`` is img1 x img2."""
        if query_column == "img2":
            matrix = matrix.T
        query_index = {name: i for i, name in enumerate(self.candidates[query_column])}
        queries = np.asarray(list(pd.unique(self.query_pairs[query_column])), dtype=object)
        candidates = np.asarray(self.candidates[candidate_column], dtype=object)
        query_ids = np.asarray([self.identities[q] for q in queries], dtype=object)
        candidate_ids = np.asarray([self.identities[c] for c in candidates], dtype=object)
        candidate = queries[:, None] != candidates[None, :]  # the query image itself is no candidate
        correct = (query_ids[:, None] == candidate_ids[None, :]) & candidate
        scored = correct.any(axis=1)
        rows = matrix[[query_index[q] for q in queries[scored]]]
        return identity_ranks(rows, correct[scored], candidate[scored])

    def compute_task_performance(self, pairs_distances_df: pd.DataFrame) -> pd.DataFrame:
        matrix = self.distance_matrix(pairs_distances_df)
        row: dict[str, Any] = {}
        for query_column, candidate_column in DIRECTIONS:
            direction = direction_name(query_column, candidate_column)
            ranks = self.direction_ranks(matrix, query_column, candidate_column)
            if ranks.size == 0:
                raise DataError(
                    f"task {self.name!r}: no {query_column} query has another image of its identity "
                    f"among the {candidate_column} candidates (identities from {self.identity_source})"
                )
            for k in self.top_k:
                row[top_k_column(k, query_column, candidate_column)] = float(np.mean(ranks <= k))
            row[mrr_column(query_column, candidate_column)] = float(np.mean(1.0 / ranks))
            row[f"Queries ({direction})"] = int(ranks.size)
            row[f"Candidates ({direction})"] = len(self.candidates[candidate_column])
        row["Identity Source"] = self.identity_source
        return self.result_row(row)
