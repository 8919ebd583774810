"""The untrained control (``pretrained=false``) of any network: re-initialise it under a seed.

A model class that declares its own ``pretrained`` option (every family of facebench-models)
builds its random network itself, with the architecture's own initialisation. For any other
model (a plugin, :func:`facebench.wrap`), the network is built as usual and then
:func:`initialise_untrained` replaces every weight, reproducibly from ``seed``:

1. ``torch.manual_seed(seed)``; every module that has ``reset_parameters()`` (or
   ``_reset_parameters()``, as ``nn.MultiheadAttention``) calls it, children before parents, so
   a parent's own rule wins: PyTorch's default initialisation (Kaiming-uniform convolutions and
   linear layers, unit/zero normalisation layers with reset running statistics, N(0, 1)
   embeddings);
2. every parameter no such module owns (class tokens, position embeddings, layer scales, a
   custom module's weights) is drawn from a normal distribution with standard deviation 0.02,
   truncated at two standard deviations (the initialisation ViTs use for tokens).

Buffers other than normalisation statistics (position ids, fixed tables) are constants and kept.
"""

from __future__ import annotations

import functools
import inspect

import torch

RESET_METHODS = ("reset_parameters", "_reset_parameters")
FALLBACK_STD = 0.02


def initialise_untrained(module: torch.nn.Module, seed: int) -> None:
    """Replace every parameter of ``module`` in place, reproducibly from ``seed`` (module doc).
    A network on the meta device has no values and is left as it is."""
    if any(parameter.is_meta for parameter in module.parameters()):
        return
    covered: set[int] = set()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for submodule in reversed(list(module.modules())):
            if _reset(submodule):
                covered.update(id(parameter) for parameter in submodule.parameters(recurse=False))
        for parameter in module.parameters():
            if id(parameter) not in covered:
                torch.nn.init.trunc_normal_(
                    parameter, std=FALLBACK_STD, a=-2 * FALLBACK_STD, b=2 * FALLBACK_STD
                )


def _reset(module: torch.nn.Module) -> bool:
    """Call the module's own reset method, if it has one that takes no arguments."""
    for method_name in RESET_METHODS:
        method = getattr(module, method_name, None)
        if callable(method) and _takes_no_arguments(method):
            method()
            return True
    return False


def _takes_no_arguments(method: object) -> bool:
    try:
        parameters = inspect.signature(method).parameters.values()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters)


@functools.cache
def declares_pretrained(cls: type) -> bool:
    """Whether a class below :class:`facebench.model.BaseModel` declares ``pretrained`` in its
    own ``__init__`` (it then builds its untrained network itself)."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass.__module__ == "facebench.model":
            continue
        try:
            if "pretrained" in inspect.signature(init).parameters:
                return True
        except (TypeError, ValueError):
            continue
    return False


__all__ = ["declares_pretrained", "initialise_untrained"]
