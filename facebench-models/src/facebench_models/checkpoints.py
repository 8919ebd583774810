"""Face-trained checkpoints: load a backbone's weights, setting aside a training margin head.

Face-recognition training frameworks (insightface's arcface_torch, face.evoLVe, TFace, CVLface,
AdaFace, MagFace, ...) save checkpoints in a few shapes: a plain state dict; the backbone under
``state_dict``, ``model``, ``backbone``, ``net`` or ``model_state_dict``, perhaps beside a
``head``/``margin`` section; keys prefixed with ``module.`` (DataParallel) or ``backbone.``; and
the metric-learning margin head (ArcFace / CosFace / CurricularFace weights, one row per training
identity) under ``head.*``, ``margin.*``, ``metric_fc.*``, ``partial_fc.*``, ``loss.*``. The
head is not part of the network facebench reads: :func:`load_backbone` loads what the network
has, sets the head aside and says so, and refuses anything else that does not fit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from facebench.errors import WeightsError
from facebench.model import load_state_dict_file

logger = logging.getLogger("facebench.models")

SECTIONS = ("state_dict", "model_state_dict", "model", "backbone", "net", "network")
HEAD_NAMES = (
    "head",
    "heads_margin",
    "margin",
    "metric_fc",
    "arc_margin",
    "arcface",
    "cosface",
    "partial_fc",
    "loss",
    "criterion",
)
CLASSIFIER_NAMES = ("fc", "logits", "classifier", "kernel", "weight")  # heads when the network lacks them
PREFIXES = ("module.", "backbone.", "model.", "net.")


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """All tensors of a checkpoint (``weights_only=True``, or safetensors), nested sections
    flattened to dotted keys.

    When the file holds one of :data:`SECTIONS` (``{"backbone": ..., "head": ..., "optimizer":
    ...}``), the tensors of that section are read unprefixed, a head section (:data:`HEAD_NAMES`)
    as ``head.*`` keys (recognised as a margin head), and the rest (training state) is left.
    """
    path = Path(path).expanduser()
    if path.suffix == ".safetensors" and path.is_file():
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as exc:
            raise WeightsError(
                f"weights file {str(path)!r} is not a readable safetensors file ({exc})"
            ) from None
    try:
        checkpoint = _load_mapped(path)
    except Exception:
        load_state_dict_file(path)  # raises the WeightsError that says what is wrong and what to do
        raise
    if not isinstance(checkpoint, Mapping):
        raise WeightsError(
            f"weights file {str(path)!r} holds a {type(checkpoint).__name__}, not a state dict; "
            f"save one with torch.save(model.state_dict(), path)"
        )
    section = next((name for name in SECTIONS if isinstance(checkpoint.get(name), Mapping)), None)
    if section is None:
        tensors = _flatten(checkpoint, "")
    else:  # the network's section, and a head section beside it; training state (optimizer, ...) is left
        heads = {key: value for key, value in checkpoint.items() if str(key).lower() in HEAD_NAMES}
        tensors = {**_flatten(checkpoint[section], ""), **_flatten(heads, "")}
    if not tensors:
        raise WeightsError(f"weights file {str(path)!r} holds no tensors; check weights_path")
    return tensors


def _load_mapped(path: Path) -> object:
    """``torch.load(weights_only=True)``, memory-mapped when the file is in torch's zip format: only
    the tensors used are read (checking names and shapes on the meta device reads none of them)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)  # the legacy format


def _flatten(mapping: Mapping[str, object], prefix: str) -> dict[str, Tensor]:
    flat: dict[str, Tensor] = {}
    for key, value in mapping.items():
        if isinstance(value, Tensor):
            flat[prefix + str(key)] = value
        elif isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def is_head_key(key: str, module: torch.nn.Module) -> bool:
    """True for a key of a training head that ``module`` does not have (``head.kernel``,
    ``margin.weight``; ``fc.weight`` or ``logits.weight`` when the network has no such layer)."""
    first = key.split(".", 1)[0]
    if first in dict(module.named_children()):
        return False
    return first.lower() in HEAD_NAMES or first.lower() in CLASSIFIER_NAMES


def load_backbone(module: torch.nn.Module, path: str | Path, model_name: str) -> list[str]:
    """Load ``path`` into ``module``; return the margin-head keys that were set aside (and logged).

    Keys are matched after stripping ``module.`` / ``backbone.`` / ``model.`` / ``net.`` prefixes
    that ``module`` does not have. Every parameter and buffer of ``module`` must be in the file
    with its shape; the only extra keys allowed are a training head's (:func:`is_head_key`) and
    batch-norm counters.
    """
    expected = module.state_dict()
    tensors = {_strip_prefixes(key, expected): value for key, value in read_checkpoint(path).items()}
    extra = [key for key in tensors if key not in expected and not key.endswith("num_batches_tracked")]
    head = sorted(key for key in extra if is_head_key(key, module))
    unexpected = sorted(key for key in extra if key not in head)
    missing = sorted(
        key for key in expected if key not in tensors and not key.endswith("num_batches_tracked")
    )
    mismatched = [
        f"{key} {tuple(tensors[key].shape)} vs {tuple(value.shape)}"
        for key, value in expected.items()
        if key in tensors and tensors[key].shape != value.shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(f"shapes differ (file vs network): {_some(mismatched)}")
        if missing:
            problems.append(f"missing from the file: {_some(missing)}")
        if unexpected:
            problems.append(f"not in the network: {_some(unexpected)}")
        raise WeightsError(
            f"model {model_name!r}: weights file {str(path)!r} does not fit {type(module).__name__} "
            f"({'; '.join(problems)}); check arch, and num_identities for a checkpoint with a classifier"
        )
    meta = any(value.is_meta for value in expected.values())  # a check before building: nothing to copy
    loaded = {key: tensors[key].to("meta") if meta else tensors[key] for key in expected if key in tensors}
    module.load_state_dict(loaded, strict=False)
    if head:
        rows = next((tuple(tensors[key].shape) for key in head if tensors[key].ndim == 2), None)
        logger.warning(
            "model %r: ignored the training margin head in %s (%d tensors: %s%s); loaded the backbone only",
            model_name,
            path,
            len(head),
            _some(head),
            f", weight shape {rows}" if rows else "",
        )
    return head


def _strip_prefixes(key: str, expected: Mapping[str, Tensor]) -> str:
    while key not in expected:
        prefix = next((p for p in PREFIXES if key.startswith(p)), None)
        if prefix is None:
            break
        key = key[len(prefix) :]
    return key


def _some(keys: list[str], limit: int = 4) -> str:
    more = f", ... ({len(keys)} in all)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
