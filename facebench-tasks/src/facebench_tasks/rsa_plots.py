"""Plots of the rsa task: RDM heatmaps and 2-D MDS of human and model geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebench.plots import headless_pyplot, save_figure
from facebench.results import safe_filename

MAX_TICK_LABELS = 40


def rdm_heatmaps(
    human: np.ndarray,
    model: np.ndarray,
    stimuli: list[str],
    output_dir: str | Path,
    task_name: str,
    model_name: str,
    model_label: str,
) -> list[Path]:
    """The mean human RDM beside a model RDM, same stimulus order; unrated pairs blank."""
    plt = headless_pyplot()

    n = len(stimuli)
    size = min(5.0 + n * 0.12, 14.0)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size), layout="constrained")
    labels = [Path(s).stem for s in stimuli]
    for ax, matrix, title in (
        (axes[0], human, "human (mean over participants)"),
        (axes[1], model, model_label),
    ):
        shown = np.ma.masked_invalid(matrix)
        image = ax.imshow(shown, cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8, label="dissimilarity")
        ax.set_title(title, fontsize=10)
        if n <= MAX_TICK_LABELS:
            ax.set_xticks(range(n), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(n), labels, fontsize=6)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{task_name}: RDMs", fontsize=12)
    return save_figure(fig, output_dir, safe_filename(f"{task_name}_rdms_{model_name}"))


def mds_plot(
    human: np.ndarray,
    model: np.ndarray,
    stimuli: list[str],
    output_dir: str | Path,
    task_name: str,
    model_name: str,
    model_label: str,
    seed: int = 0,
) -> list[Path]:
    """2-D metric MDS (``sklearn.manifold.MDS`` on the precomputed dissimilarities, classical-MDS
    start) of the human and model RDMs; the model's configuration is Procrustes-aligned to the
    human one (rotation, reflection, scale) so the two panels can be compared point by point.
    The human panel is left out when a pair has no rating (MDS needs every dissimilarity)."""
    plt = headless_pyplot()
    from matplotlib import colormaps
    from scipy.spatial import procrustes

    model_xy = _mds(model, seed)
    human_xy = _mds(human, seed) if np.isfinite(human).all() else None
    if human_xy is not None:
        human_xy, model_xy, _ = procrustes(human_xy, model_xy)
    panels = [("human (mean over participants)", human_xy), (model_label, model_xy)]
    panels = [(title, xy) for title, xy in panels if xy is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 5.5), layout="constrained")
    axes = np.atleast_1d(axes)
    labels = [Path(s).stem for s in stimuli]
    colors = colormaps["tab20"](np.arange(len(stimuli)) % 20)
    for ax, (title, xy) in zip(axes, panels, strict=True):
        ax.scatter(xy[:, 0], xy[:, 1], c=colors, s=30)
        if len(stimuli) <= MAX_TICK_LABELS:
            for (x, y), label in zip(xy, labels, strict=True):
                ax.annotate(label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle(f"{task_name}: 2-D MDS", fontsize=12)
    return save_figure(fig, output_dir, safe_filename(f"{task_name}_mds_{model_name}"))


def _mds(dissimilarities: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import MDS

    matrix = (dissimilarities + dissimilarities.T) / 2.0
    np.fill_diagonal(matrix, 0.0)
    mds = MDS(n_components=2, metric="precomputed", init="classical_mds", random_state=seed)
    return mds.fit_transform(matrix)
