"""Which axis of a layer's 4-D output holds the channels: ``(B, C, H, W)`` or ``(B, H, W, C)``.

``mean`` averages over the spatial axes, so a channels-last output (the stages of a Swin, the
``norm``/``mlp`` inside a ConvNeXt block) must be read as such. A layer's layout is decided, in
this order, by:

1. the family's declaration (``declared``: layer names, e.g. timm's ``feature_info`` stages,
   which are in the network's ``output_fmt``; and module class names);
2. its module's type: ``Linear`` and a last-axis ``LayerNorm`` give ``(B, H, W, C)`` on a 4-D
   input; convolutions, batch and group norms, pooling and ``LayerNorm2d`` give ``(B, C, H, W)``;
   a transformers norm says by its ``data_format``, a ``Permute`` by its ``dims``; an
   ``nn.Sequential`` is its last layout-setting module;
3. the network's own layout (``network_channels_last``: timm's ``output_fmt == "NHWC"``,
   torchvision's Swin), except for activations and dropouts, whose input may be an attention
   map (not known: ``None``). In a channels-first network with channels-last sections (a last-axis
   ``LayerNorm`` or a ``Permute`` to NHWC, as in ConvNeXt) any other module is not known
   (``None``): :meth:`SpatialLayout.layer_output` refuses ``mean`` on it rather than guess.

The ``timm``, ``torchvision`` and ``huggingface`` families use :class:`SpatialLayout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from facebench.errors import ConfigError

CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm)
POOLING = (
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
PASS_THROUGH = ("Identity", "Dropout", "DropPath", "StochasticDepth", "Flatten")


def channels_last(
    network: nn.Module,
    layer: str,
    network_channels_last: bool = False,
    declared: Mapping[str, bool] | None = None,
) -> bool | None:
    """True if ``layer``'s 4-D output is ``(B, H, W, C)``, False if ``(B, C, H, W)``, None if
    that cannot be told (see the module doc). ``declared`` maps module class names (and layer
    names) to their layout."""
    declared = declared or {}
    module = network.get_submodule(layer)
    if layer in declared:
        return declared[layer]
    by_type = _by_type(module, declared)
    if by_type is not None:
        return by_type
    if network_channels_last:  # but an attention map's softmax or dropout is no feature map
        return None if _is_activation(module) or isinstance(module, nn.Dropout) else True
    return None if any(_marks_channels_last(m, declared) for m in network.modules()) else False


def _by_type(module: nn.Module, declared: Mapping[str, bool]) -> bool | None:
    name = type(module).__name__
    if name in declared:
        return declared[name]
    if name == "Permute" and hasattr(module, "dims"):
        return list(module.dims) == [0, 2, 3, 1]
    if isinstance(module, nn.Linear):
        return True
    if getattr(module, "data_format", None) in ("channels_last", "channels_first"):  # transformers
        return module.data_format == "channels_last"
    if isinstance(module, nn.LayerNorm):
        return "2d" not in name.lower()
    if isinstance(module, CHANNELS_FIRST + POOLING):
        return False
    if isinstance(module, nn.Sequential):
        for child in reversed(list(module.children())):
            if type(child).__name__ not in PASS_THROUGH and not _is_activation(child):
                return _by_type(child, declared)
    return None


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == "torch.nn.modules.activation"


def _marks_channels_last(module: nn.Module, declared: Mapping[str, bool]) -> bool:
    """A module that only a channels-last section would hold: a last-axis ``LayerNorm``, a
    ``Permute`` to NHWC, a class declared channels-last (a ``Linear`` alone does not: it is
    every classifier)."""
    if isinstance(module, nn.Linear):
        return False
    return _by_type(module, declared) is True


class SpatialLayout:
    """A model mixin: ``mean`` on a channels-last 4-D layer output averages its spatial axes.

    :meth:`layer_output` hands such an output over as ``(B, C, H, W)`` when the layer's reduction
    is ``mean``, and refuses ``mean`` on a 4-D output whose layout cannot be told. A family says
    :meth:`network_channels_last` and :meth:`declared_layouts`.
    """

    def network_channels_last(self) -> bool:
        """Whether the network's layers give ``(B, H, W, C)`` outputs unless their type says
        otherwise (:func:`channels_last`)."""
        return False

    def declared_layouts(self) -> dict[str, bool]:
        """Layer names and module class names whose 4-D output is known to be channels-last
        (True) or channels-first (False)."""
        return {}

    def layer_output(self, layer: str, output: Any, batch: int) -> Tensor:
        """The model's tensor, seen as ``(B, C, H, W)`` when it is a channels-last 4-D output
        reduced by ``mean``; ``mean`` on a 4-D output of unknown layout raises :class:`ConfigError`."""
        tensor: Tensor = super().layer_output(layer, output, batch)  # type: ignore[misc]
        model: Any = self
        if tensor.ndim != 4 or model.reduction_for(layer) != "mean" or layer not in model.extract_layers:
            return tensor
        known: dict[str, bool | None] = self.__dict__.setdefault("_channels_last", {})
        if layer not in known:  # told once per layer: the network's modules do not change
            known[layer] = channels_last(
                model.model, layer, self.network_channels_last(), self.declared_layouts()
            )
        last = known[layer]
        if last is None:
            raise ConfigError(
                f"model {model.name!r}: layer {layer!r} gives a 4-D output {tuple(tensor.shape)} whose "
                f"channel axis cannot be told (this network mixes (B, C, H, W) and (B, H, W, C) "
                f"layers), so 'mean' could average the wrong axes; use reduction='flatten' for it, "
                f"or 'mean' on a stage or a layer of known type (Conv2d, Linear, LayerNorm)"
            )
        return tensor.permute(0, 3, 1, 2) if last else tensor
