"""The contract a model plugin implements: build a network, preprocess an image, return layers.

A subclass implements :meth:`BaseModel._build_model` and usually overrides
:meth:`BaseModel.default_preprocessing` (the :class:`~facebench.preprocessing.Preprocessing`
its weights were trained with) and :meth:`BaseModel.hub_weights_id` (which downloaded weights
it uses). Everything else — lazy building, layer hooks, reductions, device, precision,
identity — is done here.

Options are the constructor's annotated keyword parameters with defaults, each stored as an
attribute of the same name (``self.arch = arch``); :class:`~facebench.registry.Registry`
converts and checks values against the annotations (:mod:`facebench.typed_options`). Every
declared option changes the model's outputs and is part of :attr:`BaseModel.identity`, except
BaseModel's own run-time and separately-recorded ones (:data:`NON_OUTPUT_OPTIONS`) and those a
subclass lists in ``non_output_options``.

Layers are ``named_modules()`` names. All requested layers come from ONE forward pass; each
hooked output is reduced and copied at hook time, so an in-place op that follows the layer
(torchvision's ``ReLU(inplace=True)``) cannot change it.

Reductions turn a layer's output into one ``(B, D)`` row per image (:mod:`facebench.reductions`):
``flatten``, ``mean`` (space, or all tokens), ``cls``, ``mean-patches`` (the patch tokens, without
the :meth:`BaseModel.prefix_tokens`) and ``cls+mean``.

``pretrained=false`` is the untrained control of every model: a class that declares its own
``pretrained`` option builds random weights itself; for any other,
:func:`facebench.untrained.initialise_untrained` re-initialises the built network under ``seed``.
"""

from __future__ import annotations

import abc
import copy
import hashlib
import inspect
import json
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from PIL import Image
from torch import Tensor

from facebench.device import autocast_dtype, resolve_device
from facebench.errors import ConfigError, UnknownNameError, WeightsError
from facebench.file_digests import file_sha256
from facebench.module_calls import reused_layer_message, trace_calls
from facebench.preprocessing import FIELDS as PREPROCESSING_FIELDS
from facebench.preprocessing import MODEL_DEFAULT, Preprocessing
from facebench.provenance import code_identity
from facebench.reductions import REDUCTIONS, TOKEN_REDUCTIONS, reduce_output
from facebench.registry import unknown_name_message
from facebench.untrained import declares_pretrained, initialise_untrained

FINAL_OUTPUT = "output"
META_BATCH = 2  # images in the meta-device trace of check_layers_before_building

PreprocessFunction = Callable[[Image.Image], Tensor]
ImageStep = Callable[[Image.Image], Image.Image]

# BaseModel options that are not part of ``model_options()``: the name, where outputs go
# (device, layers), and what identity records on its own (weights fingerprint and seed,
# preprocessing, precision) or the cache keys separately (reduction, per layer table).
NON_OUTPUT_OPTIONS: frozenset[str] = frozenset(
    {
        "name",
        "weights_path",
        "extract_layers",
        "preprocess_function",
        "reduction",
        "device",
        "precision",
        "seed",
        *PREPROCESSING_FIELDS,
    }
)


class BaseModel(abc.ABC):
    """A network whose layers facebench reads. Construction is cheap; the network is built on
    first use of :attr:`model`."""

    default_layers: ClassVar[tuple[str, ...]] = ()  # () means the model's final output
    default_reduction: ClassVar[str] = "flatten"
    image_size: ClassVar[int] = 224  # resize and crop of the default ImageNet preprocessing
    non_output_options: ClassVar[frozenset[str]] = frozenset()  # a subclass's options outside identity
    alignment_template: ClassVar[str] = "crop"  # align=mtcnn's target (facebench.alignment.TEMPLATES)
    # options that only choose which weights are loaded: left out of the identity when a
    # weights_path replaces those weights (the file's digest is in the identity instead)
    weights_options: ClassVar[frozenset[str]] = frozenset()

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
        pretrained: bool = True,
        resize: int | tuple[int, int] | None = MODEL_DEFAULT,
        crop: int | tuple[int, int] | None = MODEL_DEFAULT,
        mean: tuple[float, float, float] = MODEL_DEFAULT,
        std: tuple[float, float, float] = MODEL_DEFAULT,
        grayscale: bool = MODEL_DEFAULT,
        interpolation: Literal["bilinear", "bicubic", "nearest", "lanczos", "box"] = MODEL_DEFAULT,
        align: bool | Literal["none", "mtcnn"] = "none",
        on_no_face: Literal["error", "skip", "center-crop"] = "error",
    ) -> None:
        """Options every model has.

        - ``name``: the model's name in results (default: the name the class is registered
          under, ``vgg16`` for ``Vgg16Model``, as on the command line; else the class name).
        - ``weights_path``: a local checkpoint file to load instead of the default weights.
        - ``extract_layers``: layer names to read (``facebench layers MODEL``); default: the model's.
        - ``preprocess_function``: a PIL image -> (C, H, W) tensor callable replacing the preprocessing.
        - ``reduction``: flatten, mean, cls, mean-patches or cls+mean (or a layer -> reduction mapping).
        - ``device``: auto, cpu, cuda, cuda:N or mps.
        - ``precision``: fp32, fp16 or bf16 (autocast on accelerators).
        - ``seed``: seeds random weights.
        - ``pretrained``: the model's weights (true), or the untrained control (false): the same
          network with random weights from ``seed`` (each module's ``reset_parameters()``).
        - ``resize``: shorter side in pixels, or [height, width] for an exact size, or none.
        - ``crop``: centre-crop size (pixels or [height, width]), or none.
        - ``mean``: per-channel normalisation mean of the 0-1 RGB values.
        - ``std``: per-channel normalisation standard deviation.
        - ``grayscale``: convert images to grey (three equal channels) before normalising.
        - ``interpolation``: resampling of the resize: bilinear, bicubic, nearest, lanczos or box.
        - ``align``: mtcnn (or true) finds each face and aligns it to the model's
          ``alignment_template`` first (:mod:`facebench.alignment`); none (or false) uses the
          images as they are.
        - ``on_no_face``: with align, images without a face are an error (all listed at once), or
          skip (a run leaves out their pairs), or center-crop (a centre crop is used instead).
        """
        self.name = name or registered_name(type(self))
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
        self.pretrained = pretrained
        self.resize, self.crop, self.mean, self.std = resize, crop, mean, std
        self.grayscale, self.interpolation = grayscale, interpolation
        self._preprocessing_overrides = self._check_preprocessing_overrides()
        self.align, self.on_no_face = align_choice(align), on_no_face
        self._align_step: ImageStep | None = None
        self._model: torch.nn.Module | None = None
        self._preprocess: PreprocessFunction | None = None
        self._preprocessing: Preprocessing | None = None
        self._identity: str | None = None
        self._meta_checked = False

    # ----------------------------------------------------------------- to implement
    @abc.abstractmethod
    def _build_model(self) -> torch.nn.Module:
        """Build the network (and load its weights). Called once, under ``torch.manual_seed(seed)``."""

    def _forward(self, tensor: Tensor) -> Any:
        """One forward pass; override when the network needs more than ``model(tensor)``."""
        return self.model(tensor)

    def default_preprocessing(self) -> Preprocessing:
        """The preprocessing the weights were trained with (what options override). Default:
        ImageNet's — resize the shorter side to :attr:`image_size`, centre crop it, normalise."""
        return Preprocessing(resize=self.image_size, crop=self.image_size)

    def image_step(self) -> ImageStep | None:
        """A PIL -> PIL step before :attr:`preprocessing` (face alignment), or None. A model with
        one is preprocessed image by image on the CPU (:attr:`batch_preprocessing` is None).
        Default: with ``align=mtcnn``, :class:`facebench.alignment.AlignStep` to
        :attr:`alignment_template`."""
        if self.align == "none":
            return None
        if self._align_step is None:
            from facebench.alignment import AlignStep

            self._align_step = AlignStep(self.alignment_template, self.on_no_face)
        return self._align_step

    def skipped_images(self, errors: Mapping[Path, str]) -> set[Path]:
        """The images among ``errors`` (image -> why this model could not embed it) whose pairs
        a run leaves out instead of failing the task: with ``align=mtcnn`` and
        ``on_no_face=skip``, the face-less ones. Default: none."""
        if self.align == "none" or self.on_no_face != "skip":
            return set()
        from facebench.alignment import NO_FACE

        return {path for path, error in errors.items() if error.startswith(NO_FACE)}

    def data_files(self) -> list[Path]:
        """Every local file :meth:`_build_model` reads (default: ``weights_path``, if given). The
        sha256 of each is part of :attr:`identity`, so embeddings are computed again when one
        changes; read them through :meth:`read_file`."""
        return [self.weights_path] if self.weights_path is not None else []

    def read_file(self, path: str | Path) -> Path:
        """The one way for :meth:`_build_model` to use a local file (a checkpoint, a config): returns
        ``path`` when it is one of :meth:`data_files` (so its digest is in :attr:`identity`);
        raises :class:`ConfigError` otherwise, before anything is read."""
        path = Path(path).expanduser()
        declared = {Path(file).expanduser().resolve() for file in self.data_files()}
        if path.resolve() not in declared:
            raise ConfigError(
                f"model {self.name!r} reads {str(path)!r}, which is not among its data_files(); "
                f"a file the network is built from must be part of the cache identity: list it "
                f"in {type(self).__name__}.data_files()"
            )
        return path

    def hub_weights_id(self) -> str | None:
        """An id of downloaded weights (``"torchvision:VGG16_Weights.IMAGENET1K_V1"``), or None
        when the model uses a local file or random weights."""
        return None

    def model_options(self) -> dict[str, Any]:
        """The options that change the model's outputs, from the constructor's declarations:
        every declared option's attribute except :data:`NON_OUTPUT_OPTIONS` and the class's
        ``non_output_options``. Part of :attr:`identity`; not written by hand."""
        from facebench.typed_options import declared_options, json_value

        excluded = NON_OUTPUT_OPTIONS | type(self).non_output_options
        if not declares_pretrained(type(self)):  # BaseModel's own: recorded in the weights fingerprint
            excluded |= {"pretrained"}
        if self.weights_path is not None:
            excluded |= type(self).weights_options
        options: dict[str, Any] = {}
        for name in declared_options(type(self)):
            if name in excluded:
                continue
            if not hasattr(self, name):
                raise TypeError(
                    f"{type(self).__qualname__} declares the option {name!r} but has no attribute "
                    f"{name!r}; store it (self.{name} = {name}) or list it in non_output_options"
                )
            options[name] = json_value(getattr(self, name))
        return options

    # ----------------------------------------------------------------- building
    def _untrained_by_reset(self) -> bool:
        """``pretrained=false`` on a class that does not declare ``pretrained`` itself: the network
        is built as usual, then re-initialised by :func:`initialise_untrained`."""
        return not self.pretrained and not declares_pretrained(type(self))

    @property
    def model(self) -> torch.nn.Module:
        """The network: built once, in eval mode, without gradients, on :attr:`device`."""
        if self._model is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                module = self._build_model()
                if self._untrained_by_reset():
                    initialise_untrained(module, self.seed)
            self._check_layers(module)
            self._model = module.eval().requires_grad_(False).to(self.device)
        return self._model

    def unbuilt_copy(self, device: str | torch.device | None = None) -> BaseModel:
        """A shallow copy without the built network (cheap to send to another process, which
        builds its own on first use), on ``device`` when given."""
        clone = copy.copy(self)
        clone._model = None
        if device is not None:
            clone.device = resolve_device(device)
            clone._autocast_dtype = autocast_dtype(self.precision, clone.device)
        return clone

    def layer_names(self) -> list[str]:
        """The names of every extractable layer, as ``named_modules()`` gives them."""
        return [name for name, _ in self.model.named_modules() if name]

    def check_layers(self) -> None:
        """Build the network now, failing if a requested layer does not exist, is reused within a
        forward pass or does not give one output per image (:meth:`check_layers_before_building`
        first, so a bad layer fails before the weights are read)."""
        self.check_layers_before_building()
        _ = self.model

    def check_layers_before_building(self) -> bool:
        """Fail before any model runs if a requested layer does not exist, runs more than once
        per forward pass, or returns an output without the batch as its first dimension — on
        the network itself, never on names a cache recorded: it is built on the meta device (no
        memory; :func:`load_weights` loads nothing there) and a meta batch of
        :data:`META_BATCH` images (no computation) traced through it. Returns whether the
        checks ran; what cannot be done on the meta device is checked when the network is built
        and run (the first batch). Done once per instance."""
        if self._model is not None:
            self._check_layers(self._model)
            return True
        if self._meta_checked or not self.extract_layers:  # the final output: checked per batch
            return True
        module = self._build_on_meta()
        if module is None:
            return False
        self._check_layers(module)
        traced = self._trace_on_meta(module)
        if traced is None:
            return False
        calls, outputs = traced
        message = reused_layer_message(self.name, calls, self.extract_layers)
        if message is not None:
            raise ConfigError(message)
        for layer in self.extract_layers:
            if layer in outputs:
                self.layer_output(layer, outputs[layer], META_BATCH)
        self._meta_checked = True
        return True

    def _build_on_meta(self) -> torch.nn.Module | None:
        """The network built on the meta device, or None if it cannot be."""
        try:
            with torch.random.fork_rng(devices=[]), torch.device("meta"):
                return self._build_model()
        except Exception:
            return None

    def check_weights_before_building(self) -> None:
        """Fail before any model runs if ``weights_path`` does not fit the network: it is built
        on the meta device, where loading checks every name and shape and copies nothing. A
        network that cannot be built there is checked when it is built."""
        if self.weights_path is None or self._model is not None:
            return
        try:
            with torch.random.fork_rng(devices=[]), torch.device("meta"):
                self._build_model()
        except WeightsError:
            raise
        except Exception:
            return

    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of a preprocessed image: the crop, an exact resize, or
        :attr:`image_size`."""
        size: Any = self.image_size
        if self.preprocess_function is None:
            preprocessing = self.preprocessing
            if preprocessing.crop is not None:
                size = preprocessing.crop
            elif isinstance(preprocessing.resize, tuple):
                size = preprocessing.resize
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def _trace_on_meta(self, module: torch.nn.Module) -> tuple[dict[str, list[str]], dict[str, Any]] | None:
        """:func:`trace_calls` of ``module`` called on a meta batch of :data:`META_BATCH` images of
        the preprocessed size, and the first output of each requested layer; None when that pass
        fails (a model whose :meth:`_forward` does more than call it)."""
        outputs: dict[str, Any] = {}

        def keep(layer: str) -> Callable[..., None]:
            return lambda _module, _inputs, output: outputs.setdefault(layer, output)

        try:
            height, width = self.input_size()
            module.eval()  # as the built network runs
            batch = torch.empty(META_BATCH, 3, height, width, device="meta")
            with ExitStack() as stack, torch.inference_mode():
                for layer in self.extract_layers:
                    stack.callback(module.get_submodule(layer).register_forward_hook(keep(layer)).remove)
                calls = trace_calls(module, lambda: module(batch))
        except Exception:
            return None
        return calls, outputs

    def layer_calls(self) -> dict[str, list[str]] | None:
        """How often each layer runs in one forward pass, and after what
        (:func:`facebench.module_calls.trace_calls`), traced on one grey image; None when that
        pass fails (e.g. a face-alignment step finds no face in it)."""
        try:
            side = max(256, self.image_size)
            tensor = self.get_preprocess_function()(Image.new("RGB", (side, side), (128, 128, 128)))
            with torch.inference_mode():
                return trace_calls(self.model, lambda: self._forward(tensor.unsqueeze(0).to(self.device)))
        except Exception:
            return None

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

    def prefix_tokens(self) -> int:
        """How many leading tokens of a ``(B, T, D)`` layer output are not image patches (the
        class token, register tokens), which ``mean-patches`` and ``cls+mean`` leave out of the
        patch mean. Default 1 (one class token); families override it from the built network."""
        return 1

    def _prefix_for(self, layer: str) -> int:
        return self.prefix_tokens() if self.reduction_for(layer) in TOKEN_REDUCTIONS else 1

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
    def _check_preprocessing_overrides(self) -> dict[str, Any]:
        """The preprocessing options that were given, checked now (before anything is built)."""
        given = {
            field: getattr(self, field)
            for field in PREPROCESSING_FIELDS
            if getattr(self, field) is not MODEL_DEFAULT
        }
        if given and self.preprocess_function is not None:
            raise ConfigError(
                f"model {self.name!r}: preprocess_function replaces the preprocessing, so "
                f"{', '.join(given)} cannot be given with it; drop one or the other"
            )
        try:
            Preprocessing().replace(**given)
        except ConfigError as exc:
            raise ConfigError(f"model {self.name!r}: {exc}") from None
        return given

    @property
    def preprocessing(self) -> Preprocessing:
        """:meth:`default_preprocessing` with the preprocessing options that were given."""
        if self._preprocessing is None:
            self._preprocessing = self.default_preprocessing().replace(**self._preprocessing_overrides)
        return self._preprocessing

    @property
    def batch_preprocessing(self) -> Preprocessing | None:
        """:attr:`preprocessing` when images may be preprocessed as decoded uint8 tensors
        (:meth:`Preprocessing.apply_to_batch`, e.g. on the GPU); None when a custom
        ``preprocess_function`` or an :meth:`image_step` needs the PIL path."""
        if self.preprocess_function is not None or self.image_step() is not None:
            return None
        return self.preprocessing

    def get_preprocess_function(self) -> PreprocessFunction:
        """The PIL RGB image -> ``(C, H, W)`` float tensor function this model uses."""
        if self._preprocess is None:
            if self.preprocess_function is not None:
                self._preprocess = self.preprocess_function
            else:
                step, transform = self.image_step(), self.preprocessing.transform()
                self._preprocess = transform if step is None else _StepThenTransform(step, transform)
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
        calls: dict[str, int] = {}
        batch = int(tensor.shape[0])
        with ExitStack() as stack:
            for layer in self.extract_layers:
                capture = self._capture(layer, outputs, calls, batch)
                hook = module.get_submodule(layer).register_forward_hook(capture)
                stack.callback(hook.remove)
            stack.enter_context(torch.inference_mode())
            if self._autocast_dtype is not None:
                stack.enter_context(torch.autocast(self.device.type, dtype=self._autocast_dtype))
            final = self._forward(tensor.to(self.device, non_blocking=True))
            if any(count > 1 for count in calls.values()):
                self._refuse_reused_layers(tensor, calls)
        if not self.extract_layers:
            outputs[FINAL_OUTPUT] = reduce_output(
                self.layer_output(FINAL_OUTPUT, final, batch),
                self.reduction_for(FINAL_OUTPUT),
                prefix_tokens=self._prefix_for(FINAL_OUTPUT),
            )
        missing = [layer for layer in self.extract_layers if layer not in outputs]
        if missing:
            raise ConfigError(
                f"model {self.name!r}: layer(s) {', '.join(missing)} exist but were not called in the "
                f"forward pass; pick layers the image goes through"
            )
        return outputs

    def _capture(
        self, layer: str, outputs: dict[str, Tensor], calls: dict[str, int], batch: int
    ) -> Callable[..., None]:
        reduction = self.reduction_for(layer)
        prefix = self._prefix_for(layer)

        def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
            calls[layer] = calls.get(layer, 0) + 1
            # copy now: a following in-place op (ReLU(inplace=True)) would change the tensor
            outputs[layer] = reduce_output(self.layer_output(layer, output, batch), reduction, layer, prefix)

        return hook

    def layer_output(self, layer: str, output: Any, batch: int) -> Tensor:
        """The tensor facebench reads from ``layer``'s ``output`` (:func:`first_tensor`), checked
        to hold one entry per image first: a :class:`ConfigError` names the layer, the shape it
        returned and the batch size otherwise (a layer that mixes the images of a batch, or
        puts them on another axis, would give wrong distances without a word)."""
        tensor = first_tensor(output, f"model {self.name!r}: layer {layer!r}")
        if tensor.ndim == 0 or tensor.shape[0] != batch:
            raise ConfigError(
                f"model {self.name!r}: layer {layer!r} returned shape {tuple(tensor.shape)} for a batch "
                f"of {batch} image(s); facebench reads layers whose output has the batch as its first "
                f"dimension. Pick another layer (`facebench layers {self.name}`)"
            )
        return tensor

    def _refuse_reused_layers(self, tensor: Tensor, counts: dict[str, int]) -> None:
        """Raise :class:`ConfigError` naming each requested layer that ran more than once, and
        the calls (traced in a second pass over ``tensor``)."""
        traced = trace_calls(self.model, lambda: self._forward(tensor.to(self.device)))
        message = reused_layer_message(self.name, traced, self.extract_layers)
        if message is None:  # the second pass differed: report the counts of the first
            reused = ", ".join(f"{layer!r} ({n} times)" for layer, n in counts.items() if n > 1)
            message = f"model {self.name!r}: {reused} ran more than once in one forward pass"
        raise ConfigError(message)

    # ----------------------------------------------------------------- identity
    def weights_fingerprint(self) -> str:
        """``sha256:<hex>`` of the weights file, ``hub:<id>``, ``random:seed=N``, or
        ``untrained:reset_parameters,seed=N`` (:meth:`_untrained_by_reset`)."""
        if self._untrained_by_reset():
            return f"untrained:reset_parameters,seed={self.seed}"
        if self.weights_path is not None:
            return "sha256:" + file_sha256(self.weights_path)
        hub = self.hub_weights_id()
        if hub is not None:
            return f"hub:{hub}"
        return f"random:seed={self.seed}"

    def data_file_digests(self) -> list[str]:
        """``sha256:<hex>`` of each of :meth:`data_files` besides ``weights_path`` (which
        :meth:`weights_fingerprint` covers)."""
        weights = self.weights_path.resolve() if self.weights_path is not None else None
        return [
            "sha256:" + file_sha256(path)
            for path in map(Path, self.data_files())
            if path.expanduser().resolve() != weights
        ]

    def preprocess_id(self) -> str:
        """A stable description of the preprocessing: :attr:`preprocessing` as JSON (after the
        image step's ``preprocess_id`` or repr, if any), or a custom function's description."""
        if self.preprocess_function is not None:
            return describe_callable(self.preprocess_function)
        text = json.dumps(self.preprocessing.describe(), sort_keys=True)
        step = self.image_step()
        return text if step is None else f"{describe_callable(step)} then {text}"

    @property
    def identity(self) -> str:
        """A sha256 over the class and its code (:func:`facebench.provenance.code_identity`),
        weights fingerprint, preprocessing and options: keys the cache."""
        if self._identity is None:
            payload = {
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "code": code_identity(type(self)),
                "weights": self.weights_fingerprint(),
                "files": self.data_file_digests(),
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
            "code": code_identity(type(self)),
            "identity": self.identity,
            "weights_fingerprint": self.weights_fingerprint(),
            "weights_path": str(self.weights_path) if self.weights_path else None,
            "data_files": [str(path) for path in self.data_files()],
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


def align_choice(align: bool | str) -> str:
    """``align``'s one meaning: ``"mtcnn"`` for mtcnn or true, ``"none"`` for none or false."""
    if align is True or align in ("mtcnn", "true"):
        return "mtcnn"
    if align is False or align in ("none", "false"):
        return "none"
    raise ConfigError(f"align={align!r}: use mtcnn (or true) to align faces, none (or false) not to")


def registered_name(cls: type) -> str:
    """The name a plugin registers ``cls`` under (the first, if several), else the class name."""
    from facebench.registry import get_registry

    target = f"{cls.__module__}:{cls.__qualname__}"
    for entry in get_registry().entries("model"):
        if entry.spec.target == target or entry.spec.target is cls:
            return entry.spec.name
    return cls.__name__


class _StepThenTransform:
    """A PIL -> PIL step, then a PIL -> tensor transform."""

    def __init__(self, step: ImageStep, transform: PreprocessFunction) -> None:
        self.step = step
        self.transform = transform

    def __call__(self, image: Image.Image) -> Tensor:
        return self.transform(self.step(image))

    def __repr__(self) -> str:
        return f"{self.step!r} then {self.transform!r}"


def first_tensor(output: Any, where: str = "a layer") -> Tensor:
    """The tensor facebench reads from a layer's output: the output itself when it is a tensor;
    else, repeatedly, element 0 of a tuple or list (a transformers block's hidden states) or the
    first value of a dict / ``ModelOutput`` (``last_hidden_state``). Wrap a layer whose wanted
    tensor sits elsewhere in a module that returns it."""
    while not isinstance(output, Tensor):
        if isinstance(output, Mapping) and output:
            output = next(iter(output.values()))
        elif isinstance(output, Sequence) and not isinstance(output, str) and len(output) > 0:
            output = output[0]
        else:
            raise ConfigError(f"{where} returned {type(output).__name__}, not a tensor")
    return output


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
        text = str(exc)
        if "Weights only load failed" not in text and "WeightsUnpickler" not in text:
            raise WeightsError(
                f"weights file {str(path)!r} is not a torch checkpoint (it cannot be unpickled); "
                f"save one with torch.save(model.state_dict(), path)"
            ) from None
        # torch's safe unpickler refused it; torch 2.4-2.6 say "Unsupported global: GLOBAL x",
        # torch 2.14 "Trying to load unsupported GLOBAL x whose module y is blocked"
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
        if found is None:  # not a pickle torch writes (e.g. "Unsupported operand 149")
            raise WeightsError(
                f"weights file {str(path)!r} is not a torch checkpoint that can be read safely "
                f"({_unpickler_detail(text)}); save one with torch.save(model.state_dict(), path)"
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
    """Load a local checkpoint into ``module``; mismatched keys become a :class:`WeightsError`.

    A module on the meta device (:meth:`BaseModel.check_weights_before_building`) has no values
    to load into: the file's names and shapes are checked against it, and it stays on meta."""
    state_dict = load_state_dict_file(path)
    if any(parameter.is_meta for parameter in module.parameters()):
        state_dict = {key: value.to("meta") for key, value in state_dict.items()}
    try:
        module.load_state_dict(state_dict, strict=strict)
    except RuntimeError as exc:
        raise WeightsError(
            f"weights file {str(path)!r} does not fit {type(module).__name__}: {state_dict_mismatch(exc)}. "
            f"Check the model options (e.g. num_identities) match the checkpoint"
        ) from None


def state_dict_mismatch(exc: RuntimeError, limit: int = 10) -> str:
    """What ``load_state_dict`` reported, on one line: every missing or unexpected key and each
    size mismatch with both shapes (the first ``limit`` lines, and how many more)."""
    lines = [line.strip().rstrip(".") for line in str(exc).strip().splitlines()[1:] if line.strip()]
    lines = [re.sub(r"torch\.Size\((\[[^\]]*\])\)", r"\1", line) for line in lines]
    if not lines:
        return _first_line(exc, 400)
    more = f"; and {len(lines) - limit} more" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def _unpickler_detail(text: str) -> str:
    """The safe unpickler's own reason, from torch's long message."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    return (found.group(1) if found else "refused by torch's safe unpickler").strip()[:200]


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:limit]


__all__ = [
    "FINAL_OUTPUT",
    "REDUCTIONS",
    "BaseModel",
    "describe_callable",
    "file_sha256",
    "first_tensor",
    "load_state_dict_file",
    "load_weights",
    "reduce_output",
]
