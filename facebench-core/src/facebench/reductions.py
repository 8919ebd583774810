"""Reductions: a layer's output -> one ``(B, D)`` float32 row per image.

- ``flatten``: every value, in C-order.
- ``mean``: the mean over the spatial axes of a ``(B, C, H, W)`` output, or over ALL the tokens
  of a ``(B, T, D)`` output (class and register tokens included). A model whose layers give
  channels-last ``(B, H, W, C)`` outputs hands them over as ``(B, C, H, W)``
  (:meth:`facebench.model.BaseModel.layer_output`; the timm and torchvision families do).
- ``cls``: the first token of a ``(B, T, D)`` output (the class token of a ViT).
- ``mean-patches``: the mean over the patch tokens of a ``(B, T, D)`` output, leaving out the
  model's prefix tokens (the class token and any register tokens), as thingsvision's average
  pooling does.
- ``cls+mean``: the class token followed by the mean of the patch tokens (``2 D`` values), the
  input of DINOv2's linear probes (``Dinov2ForImageClassification``).

Which leading tokens are not patches is the model's :meth:`facebench.model.BaseModel.prefix_tokens`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facebench.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor

REDUCTIONS = ("flatten", "mean", "cls", "mean-patches", "cls+mean")
TOKEN_REDUCTIONS = frozenset({"cls", "mean-patches", "cls+mean"})
"""The reductions that read a ``(batch, tokens, dim)`` output and the model's prefix tokens."""

MEANINGS: dict[str, str] = {
    "flatten": "every value of the layer's output",
    "mean": "mean over space (B, C, H, W) or over all tokens, class token included (B, T, D)",
    "cls": "the class token, the first token",
    "mean-patches": "mean over the patch tokens, class and register tokens left out",
    "cls+mean": "class token, then the mean of the patch tokens (DINOv2's linear-probe input)",
}


def reduce_output(output: Tensor, reduction: str, layer: str = "output", prefix_tokens: int = 1) -> Tensor:
    """``(B, ...)`` -> a fresh ``(B, D)`` float32 tensor (a copy, never a view of ``output``).

    ``prefix_tokens``: how many leading tokens of a ``(B, T, D)`` output are not patches (class
    and register tokens); used by ``cls``, ``mean-patches`` and ``cls+mean``.
    """
    import torch

    output = output.detach()
    if reduction not in REDUCTIONS:
        raise ConfigError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
    if reduction == "flatten":
        reduced = output.reshape(output.shape[0], -1)
    elif reduction == "mean":
        if output.ndim >= 4:
            reduced = output.mean(dim=tuple(range(2, output.ndim)))
        elif output.ndim == 3:
            reduced = output.mean(dim=1)
        else:
            reduced = output.reshape(output.shape[0], -1)
    else:
        reduced = _token_reduction(output, reduction, layer, prefix_tokens)
    return reduced.to(dtype=torch.float32, memory_format=torch.contiguous_format, copy=True)


def _token_reduction(output: Tensor, reduction: str, layer: str, prefix_tokens: int) -> Tensor:
    if output.ndim != 3:
        raise ConfigError(
            f"layer {layer!r}: reduction {reduction!r} reads the tokens of a (batch, tokens, dim) output, "
            f"but this layer gives shape {tuple(output.shape)}; use 'mean' or 'flatten'"
        )
    if reduction in ("cls", "cls+mean") and prefix_tokens < 1:
        raise ConfigError(
            f"layer {layer!r}: reduction {reduction!r} takes the class token, but this model has none; "
            f"use 'mean' (all tokens) or 'flatten'"
        )
    if reduction == "cls":
        return output[:, 0]
    if output.shape[1] <= prefix_tokens:
        raise ConfigError(
            f"layer {layer!r}: {output.shape[1]} token(s), all of them prefix (class/register) tokens, "
            f"so there are no patch tokens for {reduction!r}; use 'cls' or 'mean'"
        )
    patches = output[:, prefix_tokens:].mean(dim=1)
    if reduction == "mean-patches":
        return patches
    import torch

    return torch.cat([output[:, 0], patches], dim=1)


__all__ = ["MEANINGS", "REDUCTIONS", "TOKEN_REDUCTIONS", "reduce_output"]
