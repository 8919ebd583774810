"""One model-layer's RDM written as rsatoolbox ``RDMs`` in rsatoolbox's HDF5 format.

The file loads with ``rsatoolbox.rdm.load_rdm(path)``: one RDM, pattern descriptor ``image``
(the image names, in the order of the features), RDM descriptors ``model`` and ``layer``, and
the dissimilarity measure named as below.

Two families of dissimilarity, because the two tools mean different things by the same word:

* a facebench metric (``euclidean``, ``cosine``, ``correlation``, ...; ``facebench list
  metrics``): the same function pair tasks use, computed in row blocks from the store (memory
  O(n^2) for the RDM, never the whole feature matrix). facebench's ``euclidean`` is the plain L2
  distance ``||x - y||``;
* ``rsatoolbox:<method>`` (``euclidean``, ``correlation``, ``mahalanobis``, ``poisson``):
  computed by ``rsatoolbox.rdm.calc_rdm`` itself, for comparing with published RSA. rsatoolbox's
  ``euclidean`` is the squared distance over the number of features, ``||x - y||^2 / D``
  (``mahalanobis`` without a noise estimate equals it); ``correlation`` is ``1 - Pearson r``,
  like facebench's. rsatoolbox takes the layer's whole ``(n, D)`` feature matrix in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from facebench.errors import ConfigError

if TYPE_CHECKING:
    from rsatoolbox.rdm import RDMs

    from facebench.layer_view import LayerView

RSATOOLBOX_PREFIX = "rsatoolbox:"
RSATOOLBOX_METHODS = ("euclidean", "correlation", "mahalanobis", "poisson")


def check_rdm_metric(metric: str) -> None:
    """Raise :class:`ConfigError` for an unknown metric, or when rsatoolbox is not installed."""
    if metric.startswith(RSATOOLBOX_PREFIX):
        method = metric.removeprefix(RSATOOLBOX_PREFIX)
        if method not in RSATOOLBOX_METHODS:
            raise ConfigError(
                f"--rdm {metric}: rsatoolbox methods offered are "
                f"{', '.join(RSATOOLBOX_PREFIX + m for m in RSATOOLBOX_METHODS)}"
            )
    else:
        from facebench.registry import get_registry

        get_registry().get("metric", metric)
    try:
        import rsatoolbox  # noqa: F401
    except ImportError:
        raise ConfigError(
            "RDM files are written by rsatoolbox, which is not installed; "
            'pip install "facebench-core[extract]"'
        ) from None


def layer_rdm(view: LayerView, metric: str) -> RDMs:
    """The RDM of ``view``'s rows under ``metric`` as rsatoolbox ``RDMs`` (module docstring)."""
    import numpy as np
    from rsatoolbox.data import Dataset
    from rsatoolbox.rdm import RDMs, calc_rdm

    names = list(view.images)
    descriptors = {"model": [view.model_name], "layer": [view.layer]}
    if metric.startswith(RSATOOLBOX_PREFIX):
        dataset = Dataset(
            view.read(np.arange(len(view))).astype(np.float64), obs_descriptors={"image": names}
        )
        # no descriptor: with one, rsatoolbox averages and sorts the patterns by it
        rdms = calc_rdm(dataset, method=metric.removeprefix(RSATOOLBOX_PREFIX))
        rdms.rdm_descriptors.update(descriptors)
        rdms.dissimilarity_measure = metric
        return rdms
    return RDMs(
        view.pairwise_distances(metric)[None, :],
        dissimilarity_measure=f"facebench:{metric}",
        rdm_descriptors=descriptors,
        pattern_descriptors={"image": names},
    )


def write_layer_rdm(view: LayerView, metric: str, path: Path) -> Path:
    """:func:`layer_rdm` saved to ``path`` in rsatoolbox's HDF5 format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    layer_rdm(view, metric).save(str(path), file_type="hdf5", overwrite=True)
    return path
