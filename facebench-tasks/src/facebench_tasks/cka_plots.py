"""Heatmaps of the cka analysis: every model-layer against every other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facebench.plots import headless_pyplot, save_figure
from facebench.results import safe_filename

MAX_TICK_LABELS = 80
MAX_ANNOTATED = 16  # model-layers up to which each cell shows its value


def cka_heatmap(rows: pd.DataFrame, method: str, output_dir: Path, name: str) -> list[Path]:
    """``rows`` (one method of the tidy CKA table) as a square heatmap, models separated by lines,
    each cell's value written in it when there are at most :data:`MAX_ANNOTATED` model-layers."""
    plt = headless_pyplot()

    keys = list(dict.fromkeys(zip(rows["Model A"], rows["Layer A"], strict=True)))
    position = {key: i for i, key in enumerate(keys)}
    matrix = np.full((len(keys), len(keys)), np.nan)
    for model_a, layer_a, model_b, layer_b, value in rows[
        ["Model A", "Layer A", "Model B", "Layer B", "CKA"]
    ].itertuples(index=False):
        matrix[position[(model_a, layer_a)], position[(model_b, layer_b)]] = value
    size = min(4.0 + 0.14 * len(keys), 24.0)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), layout="constrained")
    image = ax.imshow(matrix, cmap="magma", vmin=min(0.0, np.nanmin(matrix)), vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"{method} CKA")
    models = [key[0] for key in keys]
    boundaries = [i for i in range(1, len(models)) if models[i] != models[i - 1]]
    for boundary in boundaries:
        ax.axhline(boundary - 0.5, color="white", linewidth=1.5)
        ax.axvline(boundary - 0.5, color="white", linewidth=1.5)
    if len(keys) <= MAX_ANNOTATED:
        fontsize = max(5.0, min(9.0, 90.0 / len(keys)))
        for (row, column), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                shade = "black" if value > 0.6 else "white"  # readable on magma's light and dark ends
                ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=fontsize, color=shade)
    if len(keys) <= MAX_TICK_LABELS:
        labels = [f"{model}: {layer}" for model, layer in keys]
        ax.set_xticks(range(len(keys)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(keys)), labels, fontsize=6)
    ax.set_title(f"{name}: {method} CKA between layers", fontsize=12)
    return save_figure(fig, output_dir, safe_filename(f"{name}_{method}"))
