"""What ``facebench layers MODEL`` shows: each layer's module type, its output shape for one
image, how often it runs per forward pass, and whether it is a default layer.

The network is traced on the meta device (no memory, no weights, no computation); one that
cannot run there is built and run once on a grey image instead. Every layer that runs exactly
once can be extracted, and any set of those combines in one run (all come from one forward
pass); a module run more than once per pass (a reused ``relu``) or never has no single output.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from facebench.model import BaseModel, first_tensor


@dataclass(frozen=True)
class LayerRow:
    """One ``named_modules()`` layer of a model."""

    name: str
    module_type: str
    shape: tuple[int, ...] | None  # of one image's output (batch axis left out); None if unknown
    runs: int | None  # calls in one forward pass; None when no pass could be traced
    default: bool

    @property
    def extractable(self) -> bool:
        return self.runs is None or self.runs == 1

    def status(self) -> str:
        if self.runs is not None and self.runs > 1:
            return f"no: runs {self.runs} times per forward pass"
        if self.runs == 0:
            return "no: not run in a forward pass"
        return "yes"


def layer_rows(model: BaseModel) -> tuple[list[LayerRow], str]:
    """Every layer of ``model``, and how they were traced: ``meta``, ``image`` (one real forward
    pass of a grey image) or ``none`` (names and types only)."""
    traced, how = _trace_meta(model), "meta"
    if traced is None:
        traced, how = _trace_image(model), "image"
    calls: dict[str, int] | None
    if traced is None:
        module, calls, shapes, how = model.model, None, {}, "none"
    else:
        calls, shapes, module = traced
    defaults = set(model.extract_layers)
    rows = [
        LayerRow(
            name=name,
            module_type=type(submodule).__name__,
            shape=shapes.get(name),
            runs=None if calls is None else calls.get(name, 0),
            default=name in defaults,
        )
        for name, submodule in module.named_modules()
        if name
    ]
    return rows, how


def shape_text(shape: tuple[int, ...] | None) -> str:
    """``64x56x56`` (no batch axis), or ``?``."""
    return "x".join(map(str, shape)) if shape is not None else "?"


Traced = tuple[dict[str, int], dict[str, tuple[int, ...]], torch.nn.Module]


def _trace(module: torch.nn.Module, forward: Callable[[], Any]) -> tuple[dict[str, int], dict[str, Any]]:
    """Calls per named module and the shape of its first output, in one ``forward()``."""
    calls: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if name not in shapes:
                with suppress(Exception):  # an output without a tensor: shape unknown
                    shapes[name] = tuple(first_tensor(output).shape[1:])

        return record

    with ExitStack() as stack, torch.inference_mode():
        for name, submodule in module.named_modules():
            if name:
                stack.callback(submodule.register_forward_hook(hook(name)).remove)
        forward()
    return calls, shapes


def _trace_meta(model: BaseModel) -> Traced | None:
    module = model._build_on_meta()
    if module is None or not any(p.is_meta for p in module.parameters()):
        return None
    height, width = model.input_size()
    try:
        module.eval()
        calls, shapes = _trace(module, lambda: module(torch.empty(1, 3, height, width, device="meta")))
    except Exception:
        return None
    return calls, shapes, module


def _trace_image(model: BaseModel) -> Traced | None:
    try:
        side = max(256, model.image_size)
        tensor = model.get_preprocess_function()(Image.new("RGB", (side, side), (128, 128, 128)))
        batch = tensor.unsqueeze(0).to(model.device)
        calls, shapes = _trace(model.model, lambda: model._forward(batch))
    except Exception:
        return None
    return calls, shapes, model.model


__all__ = ["LayerRow", "layer_rows", "shape_text"]
