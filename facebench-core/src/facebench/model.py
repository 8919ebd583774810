"""The contract a model plugin implements: build a network, preprocess an image, return layers.

A subclass implements :meth:`BaseModel._build_model` and usually overrides
:meth:`BaseModel._default_preprocess` (the preprocessing its weights were trained with),
:meth:`BaseModel.hub_weights_id` (which downloaded weights it uses) and
:meth:`BaseModel.model_options` (options that change its outputs). Everything else — lazy
building, layer hooks, reductions, device, precision, identity — is done here.

Layers are ``named_modules()`` names. All requested layers come from ONE forward pass; each
hooked output is reduced and copied at hook time, so an in-place op that follows the layer
(torchvision's ``ReLU(inplace=True)``) cannot change it.

Reductions turn a layer's output into one ``(B, D)`` row per image:

- ``flatten``: every value, in C-order;
- ``mean``: mean over the spatial axes of a ``(B, C, H, W)`` output, or over the tokens of a
  ``(B, T, D)`` output;
- ``cls``: the first token of a ``(B, T, D)`` output (the class token of a ViT).
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import json
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image
from torch import Tensor

from facebench.device import autocast_dtype, resolve_device
from facebench.errors import ConfigError, UnknownNameError, WeightsError
from facebench.registry import unknown_name_message

REDUCTIONS = ("flatten", "mean", "cls")
FINAL_OUTPUT = "output"

PreprocessFunction = Callable[[Image.Image], Tensor]


class BaseModel(abc.ABC):
    """A network whose layers facebench reads. Construction is cheap; the network is built on
    first use of :attr:`model`."""

    default_layers: ClassVar[tuple[str, ...]] = ()  # () means the model's final output
    default_reduction: ClassVar[str] = "flatten"
    image_size: ClassVar[int] = 224  # for the default ImageNet preprocessing

    def __init__(
        self,
        name: str | None = None,
        weights_path: str | Path | None = None,
        extract_layers: str | Sequence[str] | None = None,
        preprocess_function: PreprocessFunction | None = None,
        reduction: str | Mapping[str, str] | None = None,
        device: str = "auto",
        precision: str = "fp32",
        seed: int = 0,
    ) -> None:
        self.name = name or type(self).__name__
        self.weights_path = Path(weights_path).expanduser() if weights_path is not None else None
        if isinstance(extract_layers, str):
            extract_layers = [extract_layers]
        layers = list(self.default_layers) if extract_layers is None else list(extract_layers)
        self.extract_layers: list[str] = list(dict.fromkeys(str(layer) for layer in layers))
        self.preprocess_function = preprocess_function
        self._reductions = self._parse_reduction(reduction)
        self.device: torch.device = resolve_device(device)
        self.precision = precision
        self._autocast_dtype = autocast_dtype(precision, self.device)
        self.seed = int(seed)
        self._model: torch.nn.Module | None = None
        self._preprocess: PreprocessFunction | None = None
        self._identity: str | None = None

    # ----------------------------------------------------------------- to implement
    @abc.abstractmethod
    def _build_model(self) -> torch.nn.Module:
        """Build the network (and load its weights). Called once, under ``torch.manual_seed(seed)``."""

    def _forward(self, tensor: Tensor) -> Any:
        """One forward pass; override when the network needs more than ``model(tensor)``."""
        return self.model(tensor)

    def _default_preprocess(self) -> PreprocessFunction:
        """The preprocessing used when none is given: ImageNet resize, centre crop, normalise."""
        from torchvision import transforms

        return transforms.Compose(
            [
                transforms.Resize(self.image_size),
                transforms.CenterCrop(self.image_size),
                transforms.ToTensor(),
                transforms.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
            ]
        )

    def hub_weights_id(self) -> str | None:
        """An id of downloaded weights (``"torchvision:VGG16_Weights.IMAGENET1K_V1"``), or None
        when the model uses a local file or random weights."""
        return None

    def model_options(self) -> dict[str, Any]:
        """Options that change the model's outputs (JSON-serialisable); part of :attr:`identity`."""
        return {}

    # ----------------------------------------------------------------- building
    @property
    def model(self) -> torch.nn.Module:
        """The network: built once, in eval mode, without gradients, on :attr:`device`."""
        if self._model is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                module = self._build_model()
            self._check_layers(module)
            self._model = module.eval().requires_grad_(False).to(self.device)
        return self._model

    def layer_names(self) -> list[str]:
        """The names of every extractable layer, as ``named_modules()`` gives them."""
        return [name for name, _ in self.model.named_modules() if name]

    def check_layers(self, known: Sequence[str] | None = None) -> None:
        """Fail now if a requested layer does not exist: checked against ``known`` (the layer
        names a cache recorded for this model's identity) without building, else by building."""
        if known is not None and self._model is None:
            self._validate_layers(list(known))
        else:
            _ = self.model

    def _check_layers(self, module: torch.nn.Module) -> None:
        self._validate_layers([name for name, _ in module.named_modules() if name])

    def _validate_layers(self, valid: list[str]) -> None:
        known = set(valid)
        for layer in self.extract_layers:
            if layer not in known:
                message = unknown_name_message("layer", layer, valid)
                raise UnknownNameError(
                    f"model {self.name!r}: {message} (`facebench layers MODEL` prints them one per line)"
                )

    # ----------------------------------------------------------------- reductions
    @property
    def output_layers(self) -> list[str]:
        """The keys :meth:`get_output` returns: the extract layers, or ``["output"]``."""
        return list(self.extract_layers) or [FINAL_OUTPUT]

    def reduction_for(self, layer: str) -> str:
        """The reduction applied to ``layer``'s output."""
        return self._reductions.get(layer, self._reductions[""])

    def _parse_reduction(self, reduction: str | Mapping[str, str] | None) -> dict[str, str]:
        """``{"": default, layer: override, ...}``, checked."""
        reductions = {"": self.default_reduction}
        if isinstance(reduction, str):
            reductions[""] = reduction
        elif isinstance(reduction, Mapping):
            unknown = [layer for layer in reduction if layer not in self.output_layers]
            if unknown:
                raise ConfigError(
                    f"model {self.name!r}: reduction given for {', '.join(map(repr, unknown))}, which "
                    f"{'is' if len(unknown) == 1 else 'are'} not among the extracted layers "
                    f"({', '.join(self.output_layers)})"
                )
            reductions.update({str(k): str(v) for k, v in reduction.items()})
        elif reduction is not None:
            raise ConfigError(f"model {self.name!r}: reduction must be a name or a layer->name mapping")
        for layer, value in reductions.items():
            if value not in REDUCTIONS:
                where = f" for layer {layer!r}" if layer else ""
                raise ConfigError(
                    f"model {self.name!r}: unknown reduction {value!r}{where}; "
                    f"use one of {', '.join(REDUCTIONS)}"
                )
        return reductions

    # ----------------------------------------------------------------- preprocessing
    def get_preprocess_function(self) -> PreprocessFunction:
        """The PIL RGB image -> ``(C, H, W)`` float tensor function this model uses."""
        if self._preprocess is None:
            self._preprocess = self.preprocess_function or self._default_preprocess()
        return self._preprocess

    def preprocess_image(self, path: str | Path) -> Tensor:
        """Decode ``path`` to RGB and preprocess it."""
        from facebench.images import load_rgb

        return self.get_preprocess_function()(load_rgb(path))

    # ----------------------------------------------------------------- forward
    def get_output(self, tensor: Tensor) -> dict[str, Tensor]:
        """``{layer: (B, D) float32 tensor}`` for every output layer, from ONE forward pass."""
        module = self.model
        outputs: dict[str, Tensor] = {}
        with ExitStack() as stack:
            for layer in self.extract_layers:
                hook = module.get_submodule(layer).register_forward_hook(self._capture(layer, outputs))
                stack.callback(hook.remove)
            stack.enter_context(torch.inference_mode())
            if self._autocast_dtype is not None:
                stack.enter_context(torch.autocast(self.device.type, dtype=self._autocast_dtype))
            final = self._forward(tensor.to(self.device, non_blocking=True))
        if not self.extract_layers:
            outputs[FINAL_OUTPUT] = reduce_output(_first_tensor(final), self.reduction_for(FINAL_OUTPUT))
        missing = [layer for layer in self.extract_layers if layer not in outputs]
        if missing:
            raise ConfigError(
                f"model {self.name!r}: layer(s) {', '.join(missing)} exist but were not called in the "
                f"forward pass; pick layers the image goes through"
            )
        return outputs

    def _capture(self, layer: str, outputs: dict[str, Tensor]) -> Callable[..., None]:
        reduction = self.reduction_for(layer)

        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            # copy now: a following in-place op (ReLU(inplace=True)) would change the tensor
            outputs[layer] = reduce_output(_first_tensor(output), reduction, layer)

        return hook

    # ----------------------------------------------------------------- identity
    def weights_fingerprint(self) -> str:
        """``sha256:<hex>`` of the weights file, ``hub:<id>``, or ``random:seed=N``."""
        if self.weights_path is not None:
            return "sha256:" + file_sha256(self.weights_path)
        hub = self.hub_weights_id()
        if hub is not None:
            return f"hub:{hub}"
        return f"random:seed={self.seed}"

    def preprocess_id(self) -> str:
        """A stable description of the preprocessing (the transform's repr, or its ``preprocess_id``)."""
        return describe_callable(self.get_preprocess_function())

    @property
    def identity(self) -> str:
        """A sha256 over the class, weights fingerprint, preprocessing and options: keys the cache."""
        if self._identity is None:
            payload = {
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "weights": self.weights_fingerprint(),
                "preprocess": self.preprocess_id(),
                "options": self.model_options(),
                "precision": self.precision,
            }
            text = json.dumps(payload, sort_keys=True, default=str)
            self._identity = hashlib.sha256(text.encode()).hexdigest()
        return self._identity

    def describe(self) -> dict[str, Any]:
        """What results.json records about this model."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "identity": self.identity,
            "weights_fingerprint": self.weights_fingerprint(),
            "weights_path": str(self.weights_path) if self.weights_path else None,
            "layers": self.output_layers,
            "reductions": {layer: self.reduction_for(layer) for layer in self.output_layers},
            "preprocessing": self.preprocess_id(),
            "options": self.model_options(),
            "device": str(self.device),
            "precision": self.precision,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, layers={self.output_layers})"


def _first_tensor(output: Any) -> Tensor:
    """A layer's output tensor: element 0 of a tuple (transformers blocks) or a ModelOutput."""
    while not isinstance(output, Tensor):
        if isinstance(output, Mapping):
            output = next(iter(output.values()))
        elif isinstance(output, Sequence) and len(output) > 0:
            output = output[0]
        else:
            raise ConfigError(f"a layer returned {type(output).__name__}, not a tensor")
    return output


def reduce_output(output: Tensor, reduction: str, layer: str = FINAL_OUTPUT) -> Tensor:
    """``(B, ...)`` -> a fresh ``(B, D)`` float32 tensor (a copy, never a view of ``output``)."""
    output = output.detach()
    if reduction == "flatten":
        reduced = output.reshape(output.shape[0], -1)
    elif reduction == "mean":
        if output.ndim >= 4:
            reduced = output.mean(dim=tuple(range(2, output.ndim)))
        elif output.ndim == 3:
            reduced = output.mean(dim=1)
        else:
            reduced = output.reshape(output.shape[0], -1)
    elif reduction == "cls":
        if output.ndim != 3:
            raise ConfigError(
                f"layer {layer!r}: reduction 'cls' takes the first token of a (batch, tokens, dim) "
                f"output, but this layer gives shape {tuple(output.shape)}; use 'mean' or 'flatten'"
            )
        reduced = output[:, 0]
    else:
        raise ConfigError(f"unknown reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
    return reduced.to(dtype=torch.float32, memory_format=torch.contiguous_format, copy=True)


def describe_callable(function: Callable[..., Any]) -> str:
    """A description of ``function`` that is the same in every run (no memory addresses)."""
    explicit = getattr(function, "preprocess_id", None)
    if explicit is not None:
        return str(explicit)
    text = repr(function)
    if " at 0x" not in text:
        return text
    name = getattr(function, "__qualname__", type(function).__name__)
    qualname = f"{getattr(function, '__module__', '')}.{name}"
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return qualname
    return f"{qualname}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, remembered per (path, size, mtime) for this process."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"weights file {str(path)!r} does not exist; check weights_path") from None
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        with path.open("rb") as handle:
            _FILE_DIGESTS[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _FILE_DIGESTS[key]


def load_state_dict_file(path: str | Path) -> dict[str, Tensor]:
    """A local checkpoint's state dict, loaded with ``weights_only=True``.

    Accepts a plain state dict or ``{"state_dict": ...}``; strips ``module.`` prefixes
    (``DataParallel`` checkpoints).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist; check weights_path")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is None:
            raise WeightsError(
                f"weights file {str(path)!r} is not a torch checkpoint (it cannot be unpickled); "
                f"save one with torch.save(model.state_dict(), path)"
            ) from None
        raise WeightsError(
            f"weights file {str(path)!r} holds a Python object ({found.group(1)}) besides tensors, "
            f"and facebench refuses to unpickle it because that can run arbitrary code. If you trust "
            f"the file, re-save its weights as a plain state dict: torch.save(model.state_dict(), path)"
        ) from None
    except Exception as exc:
        raise WeightsError(
            f"weights file {str(path)!r} could not be read as a torch checkpoint ({_first_line(exc)}); "
            f"save one with torch.save(model.state_dict(), path)"
        ) from None
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, Tensor) for v in checkpoint.values()):
        raise WeightsError(
            f"weights file {str(path)!r} is not a state dict (a mapping of names to tensors, or "
            f"{{'state_dict': ...}}); save one with torch.save(model.state_dict(), path)"
        )
    return {key.removeprefix("module."): value for key, value in checkpoint.items()}


def load_weights(module: torch.nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load a local checkpoint into ``module``; mismatched keys become a :class:`WeightsError`."""
    state_dict = load_state_dict_file(path)
    try:
        module.load_state_dict(state_dict, strict=strict)
    except RuntimeError as exc:
        raise WeightsError(
            f"weights file {str(path)!r} does not fit {type(module).__name__}: {_first_line(exc, 400)}. "
            f"Check the model options (e.g. num_identities) match the checkpoint"
        ) from None


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:limit]


__all__ = [
    "FINAL_OUTPUT",
    "REDUCTIONS",
    "BaseModel",
    "describe_callable",
    "file_sha256",
    "load_state_dict_file",
    "load_weights",
    "reduce_output",
]
