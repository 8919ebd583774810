"""Downloadable weights: use the local cache, or fail fast and clearly when a download cannot work.

Hub libraries retry for tens of seconds when there is no network. Before any download, the
models here check (1) the local cache, then (2) offline mode (``HF_HUB_OFFLINE`` or
``TRANSFORMERS_OFFLINE``, read when the weights are needed, for every library), then (3) that
the host answers within a few seconds; otherwise they raise :class:`WeightsError` at once,
saying which weights are missing and how to pass a local file or folder instead.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from facebench.errors import WeightsError

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
PROBE_TIMEOUT_S = 5.0
DOWNLOAD_SOCKET_TIMEOUT_S = 30.0


def offline_mode() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` is set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"} for name in OFFLINE_VARIABLES
    )


def ensure_downloadable(what: str, url: str, instead: str) -> None:
    """Raise :class:`WeightsError` now if ``what`` cannot be downloaded from ``url``.

    ``instead`` tells the user how to do without the download (a local file or folder).
    """
    if offline_mode():
        raise WeightsError(
            f"{what} are not in the local cache, and downloads are switched off (HF_HUB_OFFLINE or "
            f"TRANSFORMERS_OFFLINE is set). {instead}"
        )
    parsed = urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise WeightsError(
            f"{what} are not in the local cache, and {host} cannot be reached to download them ({exc}). "
            f"{instead}"
        ) from None


@contextmanager
def download_errors(what: str, instead: str) -> Iterator[None]:
    """Turn any failure while fetching ``what`` into a :class:`WeightsError` saying what to do."""
    try:
        yield
    except WeightsError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{what} could not be downloaded or loaded ({detail}). {instead}") from exc


@contextmanager
def socket_timeout(seconds: float = DOWNLOAD_SOCKET_TIMEOUT_S) -> Iterator[None]:
    """A default socket timeout for libraries that download with ``urllib`` and none of their own."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextmanager
def torch_hub_download(what: str, url: str) -> Iterator[None]:
    """Around a ``torch.hub`` download of ``url`` (torchvision weights): fail fast unless the file is
    in the torch hub cache or can be downloaded; any failure inside becomes a :class:`WeightsError`.

    Messages name ``what`` followed by the file name, and say where to put the file instead.
    """
    import torch

    filename = os.path.basename(urlparse(url).path)
    what = f"{what} ({filename})"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    instead = (
        f"Put the file at {cached} (download it from {url}), or pass "
        f"weights_path=<a local .pth state dict>, or pretrained=false for random weights."
    )
    if not cached.is_file():
        ensure_downloadable(what, url, instead)
    with download_errors(what, instead), socket_timeout():
        yield


def cached_hf_file(repo_id: str, filenames: tuple[str, ...]) -> Path | None:
    """The first of ``filenames`` already in the Hugging Face cache for ``repo_id``, without network."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename)
        if isinstance(found, str):
            return Path(found)
    return None


def hf_endpoint() -> str:
    """The Hugging Face Hub address downloads go to (``HF_ENDPOINT`` or huggingface.co)."""
    from huggingface_hub import constants

    return constants.ENDPOINT
