"""Tiny test stimuli for plugin tests: face-like images by identity, a pairs file and an images table.

:func:`write_task_data` writes, into one folder, what every built-in task shape reads:

- ``images/idNN/imgM.png``: ``identities`` x ``per_identity`` small RGB images; images of one
  identity share a random base pattern (so an embedding can tell identities apart);
- ``pairs.csv``: every same-identity pair and as many different-identity pairs, with the
  columns ``img1``, ``img2``, ``truth`` (1 same, 0 different; the accuracy task's default label
  column), ``same`` (the same, as ``true``/``false``), ``distance`` (a made-up human
  dissimilarity: correlation, RSA), ``condition`` (``upright``/``inverted``: conditioned
  averages, relative differences), ``fold`` (0..3), ``identity1``, ``identity2``;
- ``table.csv``: the images table, ``image``, ``identity``, ``label`` (the identity again, the
  probe's default label column) and ``condition``.

Only numpy, pandas and Pillow: importing this module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

PAIRS_COLUMNS = ("img1", "img2", "truth", "same", "distance", "condition", "fold", "identity1", "identity2")
TABLE_COLUMNS = ("image", "identity", "label", "condition")
FOLDS = 4


@dataclass(frozen=True)
class TaskData:
    """Where :func:`write_task_data` put the stimuli."""

    root: Path
    images: Path  # the images folder (``images_path``)
    pairs: Path  # the pairs file (``pairs_file_path``)
    table: Path  # the images table (``table_path``)
    image_names: tuple[str, ...]  # relative to ``images``, identity by identity

    def identity_of(self, name: str) -> str:
        """The identity folder of an image name."""
        return name.split("/")[0]


def write_images(
    folder: str | Path, identities: int = 6, per_identity: int = 5, size: int = 24, seed: int = 0
) -> list[str]:
    """Write the images (PNG) and return their names relative to ``folder``."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    names: list[str] = []
    for identity in range(identities):
        base = rng.integers(0, 256, (size // 4, size // 4, 3)).astype(np.float64)
        (folder / f"id{identity:02d}").mkdir(parents=True, exist_ok=True)
        for index in range(per_identity):
            noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            image = Image.fromarray(noisy).resize((size, size), Image.Resampling.BILINEAR)
            name = f"id{identity:02d}/img{index}.png"
            image.save(folder / name)
            names.append(name)
    return names


def write_task_data(
    folder: str | Path, identities: int = 6, per_identity: int = 5, size: int = 24, seed: int = 0
) -> TaskData:
    """Images, ``pairs.csv`` and ``table.csv`` in ``folder`` (see the module docstring)."""
    root = Path(folder)
    images = root / "images"
    names = write_images(images, identities, per_identity, size, seed)
    rng = np.random.default_rng(seed + 1)
    identity = {name: name.split("/")[0] for name in names}
    same = [(a, b) for a, b in combinations(names, 2) if identity[a] == identity[b]]
    different = [(a, b) for a, b in combinations(names, 2) if identity[a] != identity[b]]
    chosen = rng.choice(len(different), size=min(len(same), len(different)), replace=False)
    pairs = same + [different[i] for i in sorted(chosen)]
    truth = np.array([identity[a] == identity[b] for a, b in pairs])
    order = rng.permutation(len(pairs))
    frame = pd.DataFrame(
        {
            "img1": [pairs[i][0] for i in order],
            "img2": [pairs[i][1] for i in order],
            "truth": truth[order].astype(int),
            "same": np.where(truth[order], "true", "false"),
            "distance": np.round(np.where(truth[order], 0.3, 0.7) + rng.normal(0, 0.15, len(pairs)), 4),
            "condition": np.where(np.arange(len(pairs)) % 2 == 0, "upright", "inverted"),
            "fold": np.arange(len(pairs)) % FOLDS,
            "identity1": [identity[pairs[i][0]] for i in order],
            "identity2": [identity[pairs[i][1]] for i in order],
        }
    )
    frame.to_csv(root / "pairs.csv", index=False)
    table = pd.DataFrame(
        {
            "image": names,
            "identity": [identity[name] for name in names],
            "label": [identity[name] for name in names],
            "condition": ["upright" if i % 2 == 0 else "inverted" for i in range(len(names))],
        }
    )
    table.to_csv(root / "table.csv", index=False)
    return TaskData(root, images, root / "pairs.csv", root / "table.csv", tuple(names))


def identity_embeddings(names: list[str] | tuple[str, ...], dim: int = 16, seed: int = 0) -> np.ndarray:
    """``(len(names), dim)`` vectors: one random centre per identity (the name's folder) plus
    noise, so same-identity rows are closer than different-identity rows."""
    rng = np.random.default_rng(seed)
    identities = sorted({name.split("/")[0] for name in names})
    centres = {identity: rng.normal(size=dim) for identity in identities}
    return np.stack([centres[name.split("/")[0]] + 0.5 * rng.normal(size=dim) for name in names])


__all__ = [
    "PAIRS_COLUMNS",
    "TABLE_COLUMNS",
    "TaskData",
    "identity_embeddings",
    "write_images",
    "write_task_data",
]
