"""Row-wise distances between paired embeddings: ``d[i] = dist(a[i], b[i])``.

Every function takes two ``(N, D)`` tensors and returns ``(N,)``; none builds an ``N x N``
matrix, so N pairs cost O(N*D). They run on whatever device and dtype the inputs have.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from facebench.errors import ConfigError

MetricFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos(a_i, b_i)``, as ``scipy.spatial.distance.cosine``.

    Where the cosine is undefined: two all-zero rows are identical, distance 0 (two black
    images must not score as different); one all-zero row against a non-zero one has distance 1
    (no direction in common). scipy returns NaN for both.
    """
    distance = 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-12)
    both_zero = (a == 0).all(dim=1) & (b == 0).all(dim=1)
    return torch.where(both_zero, torch.zeros_like(distance), distance)


def euclidean_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_i||_2``."""
    return torch.linalg.vector_norm(a - b, ord=2, dim=1)


def squared_euclidean_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_i||_2^2``."""
    return (a - b).pow(2).sum(dim=1)


def manhattan_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||a_i - b_i||_1``, as ``scipy.spatial.distance.cityblock``."""
    return (a - b).abs().sum(dim=1)


def correlation_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - pearson(a_i, b_i)`` over the feature axis, as ``scipy.spatial.distance.correlation``.

    Where Pearson's r is undefined (a constant row): two constant rows have distance 0 (no
    pattern tells them apart), one constant row against a varying one distance 1 (r taken as 0).
    """
    centred_a = a - a.mean(dim=1, keepdim=True)
    centred_b = b - b.mean(dim=1, keepdim=True)
    distance = 1.0 - F.cosine_similarity(centred_a, centred_b, dim=1, eps=1e-12)
    constant_a, constant_b = (a == a[:, :1]).all(dim=1), (b == b[:, :1]).all(dim=1)
    distance = torch.where(constant_a | constant_b, torch.ones_like(distance), distance)
    return torch.where(constant_a & constant_b, torch.zeros_like(distance), distance)


class ZeroEmbeddingWarning(UserWarning):
    """Images whose embedding is all zeros at a layer: their distances are conventions."""


def warn_zero_embeddings(layer: str, images: Sequence[str], affected: int, n_pairs: int) -> None:
    """Say how many images have an all-zero embedding at ``layer`` and how many pairs use one:
    such a pair's distance says nothing about the faces (cosine and correlation give it 0 or 1 by
    convention, see :func:`cosine_distance`)."""
    shown = ", ".join(map(repr, images[:5])) + (f" and {len(images) - 5} more" if len(images) > 5 else "")
    warnings.warn(
        f"layer {layer!r}: {len(images)} image(s) have an all-zero embedding ({shown}); {affected} of "
        f"{n_pairs} pairs use one, and their distances are conventions, not measurements. Check the "
        f"images (blank, failed alignment) and the layer (e.g. a ReLU output that is zero for them).",
        ZeroEmbeddingWarning,
        stacklevel=4,
    )


@dataclass(frozen=True)
class Metric:
    """A resolved distance: its name, its function, and whether it is ``1 - similarity``."""

    name: str
    function: MetricFunction
    bounded: bool = False

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.function(a, b)


def resolve_metric(metric: str | Callable[..., object] | Metric) -> Metric:
    """A registered metric by name, or a user's callable checked on a tiny input."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        from facebench.registry import MetricSpec, get_registry

        spec = get_registry().get("metric", metric).spec
        assert isinstance(spec, MetricSpec)
        return Metric(spec.name, spec.load(), spec.bounded)
    if callable(metric):
        check_metric_callable(metric)
        name = getattr(metric, "__name__", type(metric).__name__)
        return Metric(name, _as_tensor_function(metric), bounded=False)
    raise ConfigError(f"distance metric must be a registered name or a callable, not {metric!r}")


def _as_tensor_function(function: Callable[..., object]) -> MetricFunction:
    def wrapped(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(function(a, b), device=a.device).reshape(-1)

    return wrapped


def check_metric_callable(function: Callable[..., object]) -> None:
    """Call ``function`` on three random pairs and insist on three finite distances."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=generator)
    b = torch.randn(3, 4, generator=generator)
    name = getattr(function, "__name__", repr(function))
    hint = "A distance takes two (N, D) tensors and returns N distances, one per row pair."
    try:
        out = torch.as_tensor(function(a, b))
    except Exception as exc:
        raise ConfigError(f"distance function {name!r} failed on a (3, 4) test input: {exc}. {hint}") from exc
    if out.shape != (3,):
        raise ConfigError(
            f"distance function {name!r} returned shape {tuple(out.shape)} for 3 pairs; expected (3,). {hint}"
        )
