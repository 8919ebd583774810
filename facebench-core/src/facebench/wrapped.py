"""Any ``torch.nn.Module`` in memory as a facebench model: :func:`wrap`.

The wrapped module is used in place (no copy): facebench puts it in eval mode, turns its
gradients off and moves it to ``device`` (by default the device it is on). Its identity, which
keys the cache, holds a sha256 of its ``state_dict`` (every parameter and buffer: names,
dtypes, shapes, bytes), its class and its architecture (``repr``), so a changed weight is never
served from the cache: the digest is taken again whenever a tensor was changed in place (its
version counter moved) or replaced.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from facebench.errors import ConfigError
from facebench.model import BaseModel
from facebench.preprocessing import Preprocessing


class WrappedModel(BaseModel):
    """An ``nn.Module`` given in memory (:func:`wrap`); layers are its ``named_modules()`` names."""

    def __init__(
        self,
        module: torch.nn.Module,
        preprocessing: Preprocessing | Mapping[str, Any] | Callable[[Image.Image], Tensor] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(module, torch.nn.Module):
            raise ConfigError(f"wrap takes a torch.nn.Module; got {type(module).__name__}")
        if isinstance(preprocessing, Mapping):
            preprocessing = Preprocessing(**preprocessing)
        if callable(preprocessing) and not isinstance(preprocessing, Preprocessing):
            if options.get("preprocess_function") is not None:
                raise ConfigError("give the preprocessing once: preprocessing= or preprocess_function=")
            options["preprocess_function"] = preprocessing
            preprocessing = None
        options.setdefault("device", str(_device_of(module)))
        super().__init__(name=name or type(module).__name__, **options)
        self.module = module
        self._wrapped_preprocessing = preprocessing
        self._digest_key: tuple[Any, ...] | None = None
        self._digest: str | None = None

    def _build_model(self) -> torch.nn.Module:
        # pretrained=false re-initialises what this returns: never the caller's own module
        return self.module if self.pretrained else copy.deepcopy(self.module)

    def _build_on_meta(self) -> torch.nn.Module | None:
        return self.module  # already built: checking its layer names costs nothing

    def default_preprocessing(self) -> Preprocessing:
        """The ``preprocessing`` given to :func:`wrap`, else ImageNet's at 224 px."""
        return self._wrapped_preprocessing or super().default_preprocessing()

    # ----------------------------------------------------------------- identity
    def state_dict_digest(self) -> str:
        """sha256 of the module's ``state_dict`` (names, dtypes, shapes, bytes), taken again
        whenever a tensor changed since the last time."""
        key = _version_key(self.module)
        if key is None or key != self._digest_key or self._digest is None:
            self._digest, self._digest_key = _state_dict_sha256(self.module), key
            self._identity = None
        return self._digest

    def weights_fingerprint(self) -> str:
        if self._untrained_by_reset():
            return super().weights_fingerprint()
        return f"state_dict:sha256:{self.state_dict_digest()}"

    @property
    def identity(self) -> str:
        self.state_dict_digest()  # a changed tensor clears the remembered identity
        return BaseModel.identity.fget(self)  # type: ignore[attr-defined]

    def model_options(self) -> dict[str, Any]:
        """The module's class, the sha256 of its source (when Python can read it) and of its
        architecture (``repr``)."""
        cls = type(self.module)
        try:
            source: str | None = hashlib.sha256(inspect.getsource(cls).encode()).hexdigest()
        except (OSError, TypeError):
            source = None
        return {
            "module_class": f"{cls.__module__}.{cls.__qualname__}",
            "module_source_sha256": source,
            "architecture_sha256": hashlib.sha256(repr(self.module).encode()).hexdigest(),
        }


def wrap(
    module: torch.nn.Module,
    preprocessing: Preprocessing | Mapping[str, Any] | Callable[[Image.Image], Tensor] | None = None,
    name: str | None = None,
    **options: Any,
) -> WrappedModel:
    """``module`` as a model the manager runs.

    ``preprocessing``: a :class:`~facebench.preprocessing.Preprocessing` (or a dict of its
    fields), or a PIL image -> ``(C, H, W)`` tensor function; default ImageNet's at 224 px.
    ``name``: its name in results (default: the module's class name). ``options``: BaseModel's
    (``extract_layers``, ``reduction``, ``device``, ``precision``, ``pretrained``, ``seed``, ...).
    """
    return WrappedModel(module, preprocessing=preprocessing, name=name, **options)


def require_model(item: Any) -> BaseModel:
    """``item`` if it is a facebench model; a clear :class:`ConfigError` otherwise (a bare
    ``nn.Module`` is pointed to :func:`wrap`)."""
    if isinstance(item, BaseModel):
        return item
    if isinstance(item, torch.nn.Module):
        raise ConfigError(
            f"{type(item).__name__} is a torch.nn.Module, not a facebench model; wrap it first: "
            f"facebench.wrap(module, preprocessing=Preprocessing(...), name='...')"
        )
    raise ConfigError(f"a model must be a facebench BaseModel (or facebench.wrap(module)); got {item!r}")


def _device_of(module: torch.nn.Module) -> torch.device:
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _version_key(module: torch.nn.Module) -> tuple[Any, ...] | None:
    """Which tensors the module holds and how often each was changed in place; None when a
    tensor keeps no version counter (an inference tensor), so the digest is always taken."""
    try:
        return tuple(
            (name, tensor.data_ptr(), tensor._version, tuple(tensor.shape), tensor.dtype)
            for name, tensor in module.state_dict(keep_vars=True).items()
        )
    except RuntimeError:
        return None


def _state_dict_sha256(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)}\n".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


__all__ = ["WrappedModel", "require_model", "wrap"]
