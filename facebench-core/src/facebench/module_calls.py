"""Which modules run how often in one forward pass, and after what.

A module object can be called more than once per pass: torchvision's ResNet blocks apply one
``relu`` after ``bn1`` and again after the residual addition. A forward hook on such a module
fires once per call, so "its output" is ambiguous. facebench refuses to extract a layer that
runs more than once (:func:`reused_layer_message` says which calls there were), and
``facebench layers`` marks those layers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from torch import nn

START = "the input"


def trace_calls(module: nn.Module, forward: Callable[[], Any]) -> dict[str, list[str]]:
    """Run ``forward()`` (one pass through ``module``) and return, for every named submodule
    that ran, one entry per call: the name of the module that finished just before it started
    (``"the input"`` for the first)."""
    calls: dict[str, list[str]] = {}
    last = [START]

    def before(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any) -> None:
            calls.setdefault(name, []).append(last[0])

        return hook

    def after(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, _output: Any) -> None:
            last[0] = name

        return hook

    with ExitStack() as stack:
        for name, submodule in module.named_modules():
            if name:
                stack.callback(submodule.register_forward_pre_hook(before(name)).remove)
                stack.callback(submodule.register_forward_hook(after(name)).remove)
        forward()
    return calls


def reused_layer_message(model_name: str, calls: dict[str, list[str]], layers: Iterable[str]) -> str | None:
    """The error for the ``layers`` that ran more than once in the traced pass, or None."""
    reused = {layer: calls[layer] for layer in layers if len(calls.get(layer, ())) > 1}
    if not reused:
        return None
    parts = []
    for layer, previous in reused.items():
        steps = ", ".join(f"call {i} after {name}" for i, name in enumerate(previous, 1))
        parent = layer.rpartition(".")[0]
        instead = f"; its parent {parent!r} gives the output of the last call" if parent else ""
        parts.append(f"{layer!r} runs {len(previous)} times in one forward pass ({steps}){instead}")
    return (
        f"model {model_name!r}: " + "; ".join(parts) + ". A layer whose module is reused within a "
        "pass has no single output, so facebench does not extract it; pick a layer that runs once "
        "(`facebench layers MODEL` marks the reused ones)"
    )


__all__ = ["START", "reused_layer_message", "trace_calls"]
