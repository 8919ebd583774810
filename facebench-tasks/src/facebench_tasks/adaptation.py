"""Adaptation heads: a small map learned on one layer's frozen embeddings from matched pairs,
scored on held-out pairs before and after."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd

from facebench.errors import ConfigError, DataError
from facebench.pairs import binary_labels, numeric_column, text_column
from facebench.task import BaseTask, TaskResult
from facebench_tasks.probe import read_matrix

if TYPE_CHECKING:
    import torch

    from facebench.layer_view import LayerView
    from facebench.plots import HumanBand

OBJECTIVES = ("retrieval", "similarity")
HEADS = ("linear", "mlp")
DIRECTIONS = ("img1->img2", "img2->img1")
RETRIEVAL_METRICS = ("Top-1", "Top-5", "MRR")
MAX_MAP_PARAMETERS = 50_000_000


def retrieval_metrics(
    queries: np.ndarray, gallery: np.ndarray, gallery_names: np.ndarray
) -> dict[str, float]:
    """Top-1, top-5 and mean reciprocal rank of retrieving ``gallery[i]`` for ``queries[i]``
    among all ``gallery`` rows, by cosine similarity (ONE direction).

    The rank of the match is 1 + the number of gallery rows of *other* images at least as
    similar (ties count against the match; rows of the match's own image file are not rivals).
    """
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    similarity = q @ g.T
    matched = np.diag(similarity)[:, None]
    rivals = gallery_names[None, :] != gallery_names[:, None]
    ranks = 1 + ((similarity >= matched) & rivals).sum(axis=1)
    return {
        "Top-1": float(np.mean(ranks <= 1)),
        "Top-5": float(np.mean(ranks <= 5)),
        "MRR": float(np.mean(1.0 / ranks)),
    }


def both_directions(a: np.ndarray, b: np.ndarray, names1: np.ndarray, names2: np.ndarray) -> dict[str, float]:
    """:func:`retrieval_metrics` img1->img2 and img2->img1, each separately, and their mean."""
    scores = {
        DIRECTIONS[0]: retrieval_metrics(a, b, names2),
        DIRECTIONS[1]: retrieval_metrics(b, a, names1),
    }
    row = {
        f"{metric} {direction}": scores[direction][metric]
        for direction in DIRECTIONS
        for metric in RETRIEVAL_METRICS
    }
    for metric in RETRIEVAL_METRICS:
        row[f"{metric} Mean"] = (scores[DIRECTIONS[0]][metric] + scores[DIRECTIONS[1]][metric]) / 2.0
    return row


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``1 - cos(a_i, b_i)``."""
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return 1.0 - (a * b).sum(axis=1) / norms


class AdaptationTask(BaseTask):
    """A map on one layer's frozen embeddings, trained on the training pairs of a pairs file
    and scored on held-out pairs, before (the raw embeddings) and after (the mapped ones).

    The map is ``head="linear"`` (a matrix, initialised to the identity when input and output
    widths agree) or ``"mlp"`` (one hidden layer of ``hidden_dim`` with ReLU), applied to both
    images of a pair (``shared=True``) or one map per column (``shared=False``: img1 and img2
    from different domains). Inputs are the embeddings, or their first ``pca_components``
    principal components with PCA fitted on the training pairs' images only. ``output_dim``
    defaults to the input width.

    ``objective="retrieval"``: symmetric InfoNCE over matched pairs (cosine similarity /
    ``temperature``, in-batch negatives, CLIP's loss), scored by retrieving each held-out
    pair's partner among all held-out pairs by cosine similarity, in each direction separately:
    ``Top-1``, ``Top-5`` and ``MRR`` for ``img1->img2`` and ``img2->img1``, and their ``Mean``
    (never "either direction correct", which flatters), each ``Before`` and ``After``.
    ``objective="similarity"``: the map is trained so that the adapted cosine distances of the
    training pairs follow their human distances (``distance_column``; loss 1 - Pearson r), and
    scored by the ``correlation`` (Pearson or Spearman) of cosine distances with the human
    distances of the held-out pairs, ``Correlation Before`` and ``Correlation After``.

    ``match_column`` (e.g. ``same`` of a verification pairs file) keeps only the pairs it marks
    as matched (1/true/same). Splits: ``split_column`` (``train`` / ``test`` per pair), or
    ``fold_column`` (each value held out in turn), or else ``n_folds`` folds made over IMAGES
    (seeded): in fold k the held-out pairs are those with an image in fold k, the training pairs
    are those without, so no image of fold k is seen in training and every held-out pair has at
    least one unseen image (both, for matched pairs that share no image).
    ``validation_fraction`` of the training pairs (random, seeded) decides early stopping
    (``patience`` epochs without a lower validation loss; the best epoch's map is kept).
    Trained with Adam on the model's device, seeded.

    Every metric is the mean over folds, with ``<metric> Std`` (population std over folds) for
    the ``After`` figures; ``Chance Top-1`` (1 / held-out pairs), ``Held-out Pairs``,
    ``Epochs``, ``Test Images Seen In Training`` (summed over folds) and ``Folds``
    say what was measured. The task holds the layer's N x D float32 matrix in memory.
    """

    pairs_file: ClassVar[str] = "required"
    images_table: ClassVar[str] = "unused"

    def __init__(
        self,
        name: str | None = None,
        *,
        objective: Literal["retrieval", "similarity"] = "retrieval",
        distance_column: str = "distance",
        correlation: Literal["pearson", "spearman"] = "pearson",
        head: Literal["linear", "mlp"] = "linear",
        hidden_dim: int = 256,
        output_dim: int | None = None,
        shared: bool = True,
        pca_components: int | None = None,
        temperature: float = 0.07,
        match_column: str | None = None,
        split_column: str | None = None,
        fold_column: str | None = None,
        n_folds: int = 5,
        validation_fraction: float = 0.2,
        max_epochs: int = 500,
        patience: int = 50,
        batch_size: int = 128,
        learning_rate: float = 3e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        progress: bool = True,
        **common: Any,
    ) -> None:
        """Options (and BaseTask's: pairs_file_path, images_path, distance_metric, ...).

        - ``objective``: retrieval (InfoNCE on matched pairs) or similarity (follow the human distances).
        - ``distance_column``: the human distance of each pair (objective=similarity).
        - ``correlation``: pearson or spearman: the held-out score of objective=similarity.
        - ``head``: linear (a matrix) or mlp (one hidden layer).
        - ``hidden_dim``: the mlp head's hidden width.
        - ``output_dim``: the map's output width (default: the input width).
        - ``shared``: one map for both images (true) or one per column (false).
        - ``pca_components``: principal components fed to the map (PCA fitted on training images only).
        - ``temperature``: the InfoNCE temperature (objective=retrieval).
        - ``match_column``: keep only the pairs this column marks as matched (1/true/same).
        - ``split_column``: train / test per pair, instead of folds.
        - ``fold_column``: a column naming each pair's fold, each held out in turn.
        - ``n_folds``: folds over images when no split or fold column is given.
        - ``validation_fraction``: share of the training pairs that decides early stopping.
        - ``max_epochs``: the most training epochs.
        - ``patience``: epochs without a lower validation loss before stopping.
        - ``batch_size``: pairs per training step.
        - ``learning_rate``: Adam's learning rate.
        - ``weight_decay``: Adam's weight decay.
        - ``seed``: seeds the folds, the split and the training.
        - ``progress``: show a progress bar while training.
        """
        for option, value, allowed in (
            ("objective", objective, OBJECTIVES),
            ("head", head, HEADS),
            ("correlation", correlation, ("pearson", "spearman")),
        ):
            if value not in allowed:
                raise ConfigError(f"{option} must be one of {', '.join(allowed)}; not {value!r}")
        if split_column is not None and fold_column is not None:
            raise ConfigError("give split_column or fold_column, not both")
        if not float(temperature) > 0:
            raise ConfigError(f"temperature must be positive, not {temperature!r}")
        if not 0 < float(validation_fraction) < 1:
            raise ConfigError(f"validation_fraction must lie between 0 and 1, not {validation_fraction!r}")
        if int(n_folds) < 2:
            raise ConfigError(f"n_folds must be at least 2, not {n_folds!r}")
        for option, value in (
            ("hidden_dim", hidden_dim),
            ("output_dim", output_dim),
            ("pca_components", pca_components),
            ("max_epochs", max_epochs),
            ("patience", patience),
            ("batch_size", batch_size),
        ):
            if value is not None and int(value) < 1:
                raise ConfigError(f"{option} must be a positive number, not {value!r}")
        self.objective = objective
        self.distance_column = distance_column
        self.correlation = correlation
        self.head = head
        self.hidden_dim = int(hidden_dim)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.shared = bool(shared)
        self.pca_components = None if pca_components is None else int(pca_components)
        self.temperature = float(temperature)
        self.match_column = match_column
        self.split_column = split_column
        self.fold_column = fold_column
        self.n_folds = int(n_folds)
        self.validation_fraction = float(validation_fraction)
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)
        self.progress = bool(progress)
        self.plot_columns = (
            ("Top-1 Mean After", "Top-1 Mean Before", "MRR Mean After")
            if objective == "retrieval"
            else ("Correlation After", "Correlation Before")
        )
        super().__init__(name, **common)

    # --- the pairs file ------------------------------------------------------------------
    def columns(self) -> tuple[str, ...]:
        extra = [c for c in (self.match_column, self.split_column, self.fold_column) if c is not None]
        if self.objective == "similarity":
            extra.append(self.distance_column)
        return (*self.required_columns, *extra)

    def column_options(self) -> dict[str, str]:
        options = {self.distance_column: "distance_column"}
        if self.match_column is not None:
            options[self.match_column] = "match_column"
        if self.split_column is not None:
            options[self.split_column] = "split_column"
        if self.fold_column is not None:
            options[self.fold_column] = "fold_column"
        return options

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.match_column is not None:
            matched = binary_labels(frame, self.match_column, self.pairs_file_path)
            if matched.sum() < 2:
                raise DataError(
                    f"{self.pairs_file_path}: column {self.match_column!r} marks {int(matched.sum())} "
                    f"pairs as matched; the task needs matched pairs to learn from"
                )
            frame = frame[matched]
        frame = frame.reset_index(drop=True)
        if self.objective == "similarity":
            frame[self.distance_column] = numeric_column(frame, self.distance_column, self.pairs_file_path)
        if self.split_column is not None:
            split = text_column(frame, self.split_column, self.pairs_file_path).str.lower()
            if not set(split) <= {"train", "test"} or split.nunique() < 2:
                raise DataError(
                    f"{self.pairs_file_path}: column {self.split_column!r} must say 'train' or 'test' "
                    f"for each pair, with both present; found {sorted(set(split))[:5]}"
                )
            frame[self.split_column] = split
        if self.fold_column is not None:
            folds = text_column(frame, self.fold_column, self.pairs_file_path)
            if folds.nunique() < 2:
                raise DataError(f"{self.pairs_file_path}: column {self.fold_column!r} names a single fold")
            frame[self.fold_column] = folds
        return frame

    def splits(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(training pairs, held-out pairs)`` index arrays (see the class docstring)."""
        pairs = self.pairs_df
        if self.split_column is not None:
            test = (pairs[self.split_column] == "test").to_numpy()
            return [(np.flatnonzero(~test), np.flatnonzero(test))]
        if self.fold_column is not None:
            folds = pairs[self.fold_column].to_numpy()
            return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in pd.unique(folds)]
        images = pd.unique(pairs[["img1", "img2"]].to_numpy().ravel())
        if len(images) < self.n_folds:
            raise DataError(f"task {self.name!r}: {len(images)} images cannot make {self.n_folds} folds")
        rng = np.random.default_rng(self.seed)
        fold_of = dict(
            zip(images[rng.permutation(len(images))], np.arange(len(images)) % self.n_folds, strict=True)
        )
        first = pairs["img1"].map(fold_of).to_numpy()
        second = pairs["img2"].map(fold_of).to_numpy()
        held_out = [(first == k) | (second == k) for k in range(self.n_folds)]
        return [(np.flatnonzero(~test), np.flatnonzero(test)) for test in held_out]

    def reference_band(self, column: str, performances: pd.DataFrame) -> HumanBand | None:
        """Chance top-1 (1 / held-out pairs) as a dotted line on the top-1 by-layer curves."""
        from facebench.plots import HumanBand

        if not column.startswith("Top-1") or "Chance Top-1" not in performances.columns:
            return None
        chance = float(performances["Chance Top-1"].mean())
        return HumanBand(low=chance, median=None, high=chance, label="Chance")

    # --- training and scoring ------------------------------------------------------------
    def evaluate(self, view: LayerView) -> TaskResult:
        """Train and score the map in every split on the view's embeddings."""
        rows1, rows2 = view.rows_of(self.pairs_df["img1"]), view.rows_of(self.pairs_df["img2"])
        return TaskResult(self.result_row(self.score(read_matrix(view), rows1, rows2, view.device)))

    def score(
        self, features: np.ndarray, rows1: np.ndarray, rows2: np.ndarray, device: torch.device | str = "cpu"
    ) -> dict[str, Any]:
        """The task's metrics for embeddings ``features``; pair i is rows ``rows1[i]``, ``rows2[i]``."""
        import torch

        features = np.asarray(features, dtype=np.float32)
        if not np.isfinite(features).all():
            raise DataError(f"task {self.name!r}: the embeddings hold NaN or inf; the model produced them")
        names1 = self.pairs_df["img1"].to_numpy().astype(str)
        names2 = self.pairs_df["img2"].to_numpy().astype(str)
        records = []
        splits = self.splits()
        for index, (train, test) in enumerate(splits):
            if len(train) < 4 or len(test) < 2:
                raise DataError(
                    f"task {self.name!r}: split {index + 1} has {len(train)} training and {len(test)} "
                    f"held-out pairs; it needs at least 4 and 2"
                )
            inputs = self._inputs(features, np.union1d(rows1[train], rows2[train]))
            model, epochs = self._train(
                inputs[rows1[train]], inputs[rows2[train]], train, device, index, len(splits)
            )
            with torch.no_grad():
                mapped1, mapped2 = _apply(model, inputs[rows1[test]], inputs[rows2[test]], device)
            raw1, raw2 = features[rows1[test]], features[rows2[test]]
            seen = set(names1[train]) | set(names2[train])
            record: dict[str, float] = {
                "Held-out Pairs": len(test),
                "Epochs": epochs,
                "Test Images Seen In Training": len((set(names1[test]) | set(names2[test])) & seen),
            }
            if self.objective == "retrieval":
                before = both_directions(raw1, raw2, names1[test], names2[test])
                after = both_directions(mapped1, mapped2, names1[test], names2[test])
                record["Chance Top-1"] = 1.0 / len(test)
            else:
                human = self.pairs_df[self.distance_column].to_numpy(dtype=float)[test]
                before = {"Correlation": self._correlate(cosine_distances(raw1, raw2), human, "raw", index)}
                after = {
                    "Correlation": self._correlate(
                        cosine_distances(mapped1, mapped2), human, "adapted", index
                    )
                }
            record.update({f"{key} Before": value for key, value in before.items()})
            record.update({f"{key} After": value for key, value in after.items()})
            records.append(record)
        table = pd.DataFrame(records)
        row: dict[str, Any] = {column: float(table[column].mean()) for column in table.columns}
        for column in table.columns:
            if column.endswith(" After"):
                row[f"{column} Std"] = float(table[column].std(ddof=0))
        row["Test Images Seen In Training"] = int(table["Test Images Seen In Training"].sum())
        row["Folds"] = self._folds_text(len(splits))
        return row

    def _folds_text(self, count: int) -> str:
        if self.split_column is not None:
            return f"one split ({self.split_column})"
        if self.fold_column is not None:
            return f"{count} folds ({self.fold_column})"
        return f"{count} folds over images"

    def _correlate(self, x: np.ndarray, y: np.ndarray, what: str, index: int) -> float:
        """The correlation of model distances ``x`` with human distances ``y`` (held-out pairs)."""
        from scipy import stats

        for values, name in ((x, f"the {what} embeddings' distances"), (y, "the human distances")):
            if np.ptp(values) == 0:
                raise DataError(
                    f"task {self.name!r}: in split {index + 1}, {name} of the held-out pairs are all "
                    f"equal, so their correlation is undefined"
                )
        method = stats.pearsonr if self.correlation == "pearson" else stats.spearmanr
        return float(method(x, y).statistic)

    def _inputs(self, features: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
        """The map's inputs: the embeddings, or their PCA fitted on the training images only."""
        if self.pca_components is None:
            return features
        from sklearn.decomposition import PCA

        if self.pca_components > min(len(train_rows), features.shape[1]):
            raise ConfigError(
                f"pca_components={self.pca_components} exceeds what the training images allow "
                f"(min of {len(train_rows)} images and {features.shape[1]} dimensions)"
            )
        pca = PCA(self.pca_components, random_state=self.seed).fit(features[train_rows])
        return pca.transform(features).astype(np.float32)

    def _train(
        self,
        inputs1: np.ndarray,
        inputs2: np.ndarray,
        train: np.ndarray,
        device: torch.device | str,
        index: int,
        total: int,
    ) -> tuple[torch.nn.Module, int]:
        """The map trained on these pairs with early stopping, and the epochs it ran."""
        import torch
        from tqdm.auto import tqdm

        width = inputs1.shape[1]
        out = self.output_dim or width
        if self.head == "linear" and width * out * (1 if self.shared else 2) > MAX_MAP_PARAMETERS:
            raise ConfigError(
                f"a {width} x {out} map is too large to train here; reduce the layer first with "
                f"pca_components=..., or set output_dim"
            )
        rng = np.random.default_rng(self.seed + index)
        order = rng.permutation(len(train))
        n_validation = max(2, round(self.validation_fraction * len(train)))
        validation, fit = order[:n_validation], order[n_validation:]
        generator = torch.Generator().manual_seed(self.seed + index)
        model = build_map(width, out, self.head, self.hidden_dim, self.shared, generator).to(device)
        x1, x2 = torch.from_numpy(inputs1).to(device), torch.from_numpy(inputs2).to(device)
        human = None
        if self.objective == "similarity":
            human = torch.from_numpy(
                self.pairs_df[self.distance_column].to_numpy(dtype=np.float32)[train]
            ).to(device)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        best, best_state, waited, epochs = math.inf, copy.deepcopy(model.state_dict()), 0, 0
        bar = tqdm(
            range(self.max_epochs),
            desc=f"{self.name} {index + 1}/{total}",
            unit="epoch",
            leave=False,
            disable=None if self.progress else True,
        )
        for epoch in bar:
            model.train()
            shuffled = fit[torch.randperm(len(fit), generator=generator).numpy()]
            for start in range(0, len(shuffled), self.batch_size):
                batch = torch.from_numpy(shuffled[start : start + self.batch_size]).to(device)
                if len(batch) < 2:
                    continue
                loss = self._loss(model, x1[batch], x2[batch], None if human is None else human[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                batch = torch.from_numpy(validation).to(device)
                value = float(
                    self._loss(model, x1[batch], x2[batch], None if human is None else human[batch])
                )
            epochs = epoch + 1
            bar.set_postfix(validation_loss=f"{value:.4f}")
            if value < best - 1e-6:
                best, best_state, waited = value, copy.deepcopy(model.state_dict()), 0
            else:
                waited += 1
                if waited >= self.patience:
                    break
        bar.close()
        model.load_state_dict(best_state)
        model.eval()
        return model, epochs

    def _loss(
        self, model: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor, human: torch.Tensor | None
    ) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        z1, z2 = (F.normalize(z, dim=1) for z in model(x1, x2))
        if human is None:
            logits = z1 @ z2.T / self.temperature
            targets = torch.arange(len(z1), device=z1.device)
            return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2.0
        distances = 1.0 - (z1 * z2).sum(dim=1)
        d, h = distances - distances.mean(), human - human.mean()
        return 1.0 - (d * h).sum() / torch.sqrt((d * d).sum() * (h * h).sum()).clamp_min(1e-12)


def _apply(
    model: Any, inputs1: np.ndarray, inputs2: np.ndarray, device: Any
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    z1, z2 = model(torch.from_numpy(inputs1).to(device), torch.from_numpy(inputs2).to(device))
    return z1.float().cpu().numpy(), z2.float().cpu().numpy()


def build_map(width: int, out: int, head: str, hidden: int, shared: bool, generator: Any) -> Any:
    """The map (or one per column): ``model(x1, x2) -> (f(x1), g(x2))``."""
    import torch
    from torch import nn

    def one() -> nn.Module:
        if head == "linear":
            layer = nn.Linear(width, out, bias=False)
            with torch.no_grad():
                if width == out:
                    layer.weight.copy_(torch.eye(width))
                else:
                    layer.weight.normal_(0.0, 1.0 / math.sqrt(width), generator=generator)
            return layer
        first, second = nn.Linear(width, hidden), nn.Linear(hidden, out)
        with torch.no_grad():
            for layer in (first, second):
                bound = 1.0 / math.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
        return nn.Sequential(first, nn.ReLU(), second)

    class MapPair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = one()
            self.second = self.first if shared else one()

        def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.first(x1), self.second(x2)

    return MapPair()
