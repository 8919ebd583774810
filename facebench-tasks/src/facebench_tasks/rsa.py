"""Representational similarity analysis: how human-like is a layer's face space?

The human representational dissimilarity matrices (RDMs) come from a pairs file: ``img1``,
``img2`` and dissimilarities (larger = more different; convert similarity ratings first), in one
of three layouts:

* one averaged value per pair: ``distance_column`` (default ``"distance"``);
* per participant, long format: one row per pair and participant, ``subject_column`` naming
  the participant and ``distance_column`` the dissimilarity;
* per participant, wide format: one column per participant, ``participant_columns=[...]``.

The stimuli are the images table's images in table order (with ``--table``), else the pairs'
images in order of first appearance. Pairs are unordered (``a, b`` = ``b, a``); a pair listed
twice for the same participant is an error. A pair nobody rated, an empty cell or a pair missing
for some participant is a NaN dissimilarity, handled as rsatoolbox handles NaNs: a dissimilarity
that is NaN in any RDM compared is left out of every comparison (so the score, the ceiling and
every bootstrap sample use the same pairs: those every participant rated).

The model RDM of each layer holds the task's distance metric (a registered, row-wise metric)
between every pair of stimuli, computed from the embedding store in chunks
(:meth:`facebench.layer_view.LayerView.pairwise_distances`).

Everything statistical is rsatoolbox's: the comparison (``comparator``: ``"spearman"``
(default), ``"tau-a"``, ``"corr"`` (Pearson) or ``"cosine"``), the score
(``rsatoolbox.inference.eval_fixed`` of a ``rsatoolbox.model.ModelFixed``: the comparison of
the model RDM with each participant's RDM, averaged over participants) and the noise ceiling
(``boot_noise_ceiling`` via ``eval_fixed``: leave-one-subject-out; lower bound = each
participant against the pooled RDM of the others, upper bound = each participant against the
pooled RDM of all, both averaged over participants; NaN with a single RDM). Pooling is
rsatoolbox's ``pool_rdm``, not a plain mean: averaged ranks for ``spearman`` and ``tau-a``,
averaged z-scores for ``corr``, RDMs divided by their root mean square then averaged for
``cosine``.

The confidence interval is a seeded percentile bootstrap (the loop is facebench's, the
resampling rsatoolbox's ``subsample_pattern`` / ``subsample``): over STIMULI when there is one
RDM, over STIMULI AND PARTICIPANTS (both resampled in every sample) with participants. A
stimulus drawn twice contributes its pairs with other stimuli twice and no pair with its own
copy (rsatoolbox's convention); samples with fewer than 3 distinct stimuli are left out. Every
layer uses the same resamples (same seed), so layers are compared on the same samples.

Result columns: ``RSA Score``, ``RSA Score CI Low``, ``RSA Score CI High``,
``Noise Ceiling Lower``, ``Noise Ceiling Upper``, ``Comparator``, ``Distance Metric``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.pairs import MAX_LISTED, text_column
from facebench.task import DISTANCE_COLUMN, BaseTask, Need, TaskResult
from facebench_tasks import stats

if TYPE_CHECKING:
    from rsatoolbox.rdm import RDMs

    from facebench.layer_view import LayerView
    from facebench.plots import HumanBand

COMPARATORS = ("spearman", "tau-a", "corr", "cosine")
MIN_PAIRS = 3
MIN_STIMULI = 3
HUMAN_COLUMN = "human_dissimilarity"
USED_COLUMN = "in_comparison"


class RSATask(BaseTask):
    """Compare each layer's RDM with human RDMs, with rsatoolbox (see the module docstring)."""

    pairs_file: ClassVar[Need] = "required"
    images_table: ClassVar[Need] = "optional"
    plot_columns: ClassVar[tuple[str, ...]] = ("RSA Score",)

    def __init__(
        self,
        name: str | None = None,
        *,
        distance_column: str = "distance",
        subject_column: str | None = None,
        participant_columns: list[str] | tuple[str, ...] | None = None,
        comparator: str = "spearman",
        n_bootstrap: int = 1000,
        confidence: float = 0.95,
        seed: int = 0,
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``distance_column``: the human dissimilarity of each pair (larger = more different).
        - ``subject_column``: the participant of each row (long format: one RDM per participant).
        - ``participant_columns``: one dissimilarity column per participant (wide format).
        - ``comparator``: spearman, tau-a, corr (Pearson) or cosine (rsatoolbox's RDM comparison).
        - ``n_bootstrap``: bootstrap resamples (stimuli, and participants) for the interval.
        - ``confidence``: the interval's coverage, e.g. 0.95.
        - ``seed``: seeds the bootstrap.
        """
        if comparator not in COMPARATORS:
            raise ConfigError(
                f"comparator {comparator!r} is not one of {', '.join(map(repr, COMPARATORS))} "
                f"(rsatoolbox's names: Spearman, Kendall's tau-a, Pearson, cosine)"
            )
        if subject_column is not None and participant_columns:
            raise ConfigError(
                "give subject_column (long format: one row per pair and participant) or "
                "participant_columns (wide format: one column per participant), not both"
            )
        if isinstance(participant_columns, str):
            participant_columns = [participant_columns]
        if participant_columns is not None and len(participant_columns) == 0:
            raise ConfigError("participant_columns is empty; name one column per participant")
        if int(n_bootstrap) < 0:
            raise ConfigError(f"n_bootstrap must be 0 (no interval) or more, not {n_bootstrap!r}")
        stats.check_confidence(confidence)
        self.distance_column = distance_column
        self.subject_column = subject_column
        self.participant_columns = None if participant_columns is None else list(participant_columns)
        self.comparator = comparator
        self.n_bootstrap = int(n_bootstrap)
        self.confidence = float(confidence)
        self.seed = int(seed)
        super().__init__(name, **common)
        self.stimuli: list[str] = self.image_names()
        self.subjects, dissimilarities = self._human_rdm_vectors()
        self.human_mean = _nanmean_rows(dissimilarities)  # for plots: the raw mean, NaN where nobody rated
        self.mask = np.isfinite(dissimilarities).all(axis=0)
        if self.mask.sum() < MIN_PAIRS:
            raise DataError(
                f"{self.pairs_file_path}: only {int(self.mask.sum())} pairs are rated by every "
                f"participant; RSA needs at least {MIN_PAIRS} (a pair missing for any participant is "
                f"left out of every comparison, as rsatoolbox does)"
            )
        dissimilarities[:, ~self.mask] = np.nan
        self.human = _rdms(dissimilarities, self.stimuli, self.subjects)

    # ------------------------------------------------------------------ reading the human RDMs
    def columns(self) -> tuple[str, ...]:
        if self.participant_columns:
            return (*self.required_columns, *self.participant_columns)
        if self.subject_column is not None:
            return (*self.required_columns, self.subject_column, self.distance_column)
        return (*self.required_columns, self.distance_column)

    def column_options(self) -> dict[str, str]:
        options = {self.distance_column: "distance_column"}
        if self.subject_column is not None:
            options[self.subject_column] = "subject_column"
        for column in self.participant_columns or ():
            options[column] = "participant_columns"
        return options

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        for column in self.participant_columns or [self.distance_column]:
            _dissimilarity_column(frame, column, self.pairs_file_path)
        if self.subject_column is not None:
            text_column(frame, self.subject_column, self.pairs_file_path)
        same = (frame["img1"] == frame["img2"]).to_numpy()
        if same.any():
            raise DataError(
                f"{self.pairs_file_path}: pair {int(np.flatnonzero(same)[0]) + 1} compares an image "
                f"with itself ({frame['img1'][same].iloc[0]!r}); an RDM has no such pairs"
            )
        return frame

    def _human_rdm_vectors(self) -> tuple[list[str], np.ndarray]:
        """Participant names and their dissimilarities, ``(participants, n * (n - 1) / 2)``."""
        frame = self.pairs_df
        index = {name: i for i, name in enumerate(self.stimuli)}
        outside = sorted(set(frame["img1"]).union(frame["img2"]) - set(index))
        if outside:
            raise DataError(
                f"{self.pairs_file_path}: {len(outside)} images of the pairs are not in the images "
                f"table {str(self.table_path)!r}: {', '.join(map(repr, outside[:MAX_LISTED]))}"
            )
        n = len(self.stimuli)
        if n < MIN_STIMULI:
            raise DataError(f"{self.pairs_file_path}: RSA needs at least {MIN_STIMULI} images, got {n}")
        i = frame["img1"].map(index).to_numpy()
        j = frame["img2"].map(index).to_numpy()
        low, high = np.minimum(i, j), np.maximum(i, j)
        position = n * low - low * (low + 1) // 2 + (high - low - 1)
        if self.participant_columns:
            subjects = list(self.participant_columns)
            groups = [(s, np.arange(len(frame)), frame[s]) for s in subjects]
        elif self.subject_column is not None:
            labels = text_column(frame, self.subject_column, self.pairs_file_path)
            subjects = sorted(set(labels))  # the bootstrap does not depend on the rows' order
            groups = [(s, np.flatnonzero(labels == s), frame[self.distance_column]) for s in subjects]
        else:
            subjects = ["mean"]
            groups = [("mean", np.arange(len(frame)), frame[self.distance_column])]
        vectors = np.full((len(subjects), n * (n - 1) // 2), np.nan)
        for row, (subject, rows, values) in enumerate(groups):
            where = position[rows]
            seen, counts = np.unique(where, return_counts=True)
            if (counts > 1).any():
                first = rows[np.flatnonzero(where == seen[counts > 1][0])[:2]] + 1
                who = "" if subject == "mean" else f" for participant {subject!r}"
                raise DataError(
                    f"{self.pairs_file_path}: the same pair is listed twice{who} (pairs "
                    f"{first[0]} and {first[1]}, counting from 1); give each pair once per participant"
                )
            vectors[row, where] = pd.to_numeric(values.iloc[rows], errors="coerce").to_numpy(float)
        return subjects, vectors

    # ------------------------------------------------------------------ scoring
    def evaluate(self, view: LayerView) -> TaskResult:
        if tuple(view.images) != tuple(self.stimuli):
            raise DataError(f"task {self.name!r}: the view's images are not the task's stimuli")
        model_vector = view.pairwise_distances(self.metric)
        if not np.isfinite(model_vector).all():
            raise DataError(
                f"task {self.name!r}: {int((~np.isfinite(model_vector)).sum())} model distances "
                f"are not finite numbers; the model produced NaN or inf"
            )
        score, lower, upper = self.score(model_vector)
        low, high = self.bootstrap_interval(model_vector)
        performance = self.result_row(
            {
                "RSA Score": score,
                "RSA Score CI Low": low,
                "RSA Score CI High": high,
                "Noise Ceiling Lower": lower,
                "Noise Ceiling Upper": upper,
                "Comparator": self.comparator,
            }
        )
        first, second = np.triu_indices(len(self.stimuli), 1)
        stimuli = np.asarray(self.stimuli, dtype=object)
        distances = pd.DataFrame(
            {
                "img1": stimuli[first],
                "img2": stimuli[second],
                HUMAN_COLUMN: self.human_mean,
                USED_COLUMN: self.mask,
                DISTANCE_COLUMN: model_vector,
            }
        )
        return TaskResult(performance, distances)

    def score(self, model_vector: np.ndarray) -> tuple[float, float, float]:
        """``(score, noise ceiling lower, upper)`` of a model RDM (condensed, stimuli order),
        from ``rsatoolbox.inference.eval_fixed``; the ceiling is NaN with a single human RDM."""
        from rsatoolbox.inference import eval_fixed
        from rsatoolbox.model import ModelFixed

        model = ModelFixed("model", self._model_rdm(model_vector))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Noise ceiling for tau based on averaged ranks")
            warnings.filterwarnings("ignore", category=RuntimeWarning)  # one RDM: no ceiling
            result = eval_fixed([model], self.human, method=self.comparator)
        score = float(np.mean(result.evaluations))
        if self.human.n_rdm < 2:
            return score, math.nan, math.nan
        lower, upper = (float(v) for v in result.noise_ceiling)
        return score, lower, upper

    def bootstrap_interval(self, model_vector: np.ndarray) -> tuple[float, float]:
        """Percentile interval over seeded resamples of stimuli (and participants, if several)."""
        from rsatoolbox.rdm import compare

        if self.n_bootstrap == 0:
            return math.nan, math.nan
        rng = np.random.default_rng(self.seed)
        model = self._model_rdm(model_vector)
        n_stimuli, n_subjects = self.human.n_cond, self.human.n_rdm
        values = np.full(self.n_bootstrap, np.nan)
        for b in range(self.n_bootstrap):
            stimuli = rng.integers(0, n_stimuli, n_stimuli)
            human = self.human
            if n_subjects > 1:
                human = human.subsample("index", rng.integers(0, n_subjects, n_subjects))
            if np.unique(stimuli).size < MIN_STIMULI:
                continue
            human = human.subsample_pattern("index", stimuli)
            sampled_model = model.subsample_pattern("index", stimuli)
            if np.isfinite(sampled_model.get_vectors()).sum() < MIN_PAIRS:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a constant sample: NaN, left out
                values[b] = np.mean(compare(sampled_model, human, method=self.comparator))
        return stats.percentile_interval(values, self.confidence)

    def _model_rdm(self, model_vector: np.ndarray) -> RDMs:
        vector = np.asarray(model_vector, dtype=float).copy()
        vector[~self.mask] = np.nan  # the pairs left out of the human RDMs (rsatoolbox's NaN rule)
        return _rdms(vector[None], self.stimuli, ["model"], measure=self.metric.name)

    # ------------------------------------------------------------------ plots
    def error_columns(self, column: str) -> tuple[str, str] | None:
        return (f"{column} CI Low", f"{column} CI High") if column == "RSA Score" else None

    def reference_band(self, column: str, performances: pd.DataFrame) -> HumanBand | None:
        """The noise ceiling, drawn as a band on the by-layer RSA curves."""
        from facebench.plots import HumanBand

        if column != "RSA Score" or self.human.n_rdm < 2:
            return None
        lower = performances["Noise Ceiling Lower"].dropna()
        upper = performances["Noise Ceiling Upper"].dropna()
        if lower.empty or upper.empty:
            return None
        return HumanBand(float(lower.iloc[0]), None, float(upper.iloc[0]), label="noise ceiling")

    def plot(
        self,
        output_dir: Path,
        performances: pd.DataFrame,
        pairs_distances: pd.DataFrame | None = None,
        **kwargs: Any,
    ) -> list[Path]:
        """Bars of the score (with its CI) and, given ``pairs_distances``, per model the human
        RDM beside the best layer's RDM (same stimulus order) and a 2-D MDS of both."""
        from facebench_tasks.rsa_plots import mds_plot, rdm_heatmaps

        written = super().plot(output_dir, performances, **kwargs)
        if pairs_distances is None:
            return written
        human = _square(self.human_mean, len(self.stimuli))
        for model_name, rows in performances.groupby("Model Name", sort=False):
            if rows["RSA Score"].isna().all():
                continue
            best = rows.loc[rows["RSA Score"].idxmax()]
            layer = str(best["Layer Name"])
            chosen = pairs_distances[
                (pairs_distances["Model Name"] == model_name) & (pairs_distances["Layer Name"] == layer)
            ]
            model = _square(chosen[DISTANCE_COLUMN].to_numpy(float), len(self.stimuli))
            label = f"{model_name} {layer} (best layer, {self.comparator} {best['RSA Score']:.3f})"
            written += rdm_heatmaps(human, model, self.stimuli, output_dir, self.name, str(model_name), label)
            written += mds_plot(
                human, model, self.stimuli, output_dir, self.name, str(model_name), label, self.seed
            )
        return written


def _rdms(vectors: np.ndarray, stimuli: list[str], subjects: list[str], measure: str = "human") -> RDMs:
    from rsatoolbox.rdm import RDMs

    return RDMs(
        np.asarray(vectors, dtype=float),
        dissimilarity_measure=measure,
        rdm_descriptors={"subject": list(subjects)},
        pattern_descriptors={"image": list(stimuli)},
    )


def _dissimilarity_column(frame: pd.DataFrame, column: str, source: Any) -> None:
    """Numbers or empty cells (missing); anything else is an error naming the rows."""
    values = frame[column]
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (values.notna() & numbers.isna()).to_numpy() | np.isinf(numbers.to_numpy(float))
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].drop_duplicates().tolist()[:MAX_LISTED])
        rows = ", ".join(str(r + 1) for r in np.flatnonzero(bad)[:MAX_LISTED])
        raise DataError(
            f"{source}: column {column!r} must hold dissimilarities (numbers; an empty cell is a "
            f"missing rating); found {examples} at pairs {rows} (counting from 1)"
        )


def _nanmean_rows(vectors: np.ndarray) -> np.ndarray:
    counts = np.isfinite(vectors).sum(axis=0)
    sums = np.nansum(vectors, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _square(vector: np.ndarray, n: int) -> np.ndarray:
    """A condensed vector (``pdist`` order) as an ``n x n`` matrix with a zero diagonal."""
    matrix = np.zeros((n, n))
    first, second = np.triu_indices(n, 1)
    matrix[first, second] = vector
    matrix[second, first] = vector
    return matrix
