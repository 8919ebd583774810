"""Convert facenet-pytorch's MTCNN weight files into the ``mtcnn.safetensors`` facebench ships.

Run once, by a maintainer, where facenet-pytorch is installed (``pip install --no-deps
facenet-pytorch``; facebench itself never needs it)::

    python facebench-core/scripts/convert_mtcnn_weights.py [FACENET_PYTORCH_DATA_FOLDER]

It reads ``pnet.pt``, ``rnet.pt`` and ``onet.pt`` (state dicts, loaded with
``weights_only=True``), checks that they load strictly into :mod:`facebench.alignment`'s networks,
and writes one safetensors file whose tensor names are prefixed ``pnet.``, ``rnet.``, ``onet.``
to ``facebench-core/src/facebench/weights/mtcnn.safetensors``. Origin and license:
THIRD_PARTY_LICENSES.md.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from facebench.alignment import NETWORKS, SHIPPED_WEIGHTS

METADATA = {
    "source": "facenet-pytorch (https://github.com/timesler/facenet-pytorch) data/pnet.pt, rnet.pt, onet.pt",
    "origin": "MTCNN, Zhang et al. 2016 (github.com/kpzhang93/MTCNN_face_detection_alignment), "
    "via David Sandberg's facenet (github.com/davidsandberg/facenet)",
    "license": "MIT",
}


def facenet_pytorch_data() -> Path:
    """facenet-pytorch's ``data/`` folder, found without importing the package."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or spec.origin is None:
        raise SystemExit("facenet-pytorch is not installed: pip install --no-deps facenet-pytorch")
    return Path(spec.origin).parent / "data"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else facenet_pytorch_data()
    tensors = {}
    for prefix, network in NETWORKS.items():
        state = torch.load(folder / f"{prefix}.pt", map_location="cpu", weights_only=True)
        network().load_state_dict(state, strict=True)
        tensors.update({f"{prefix}.{name}": value.contiguous() for name, value in state.items()})
    save_file(tensors, SHIPPED_WEIGHTS, metadata=METADATA)
    print(f"wrote {SHIPPED_WEIGHTS} ({SHIPPED_WEIGHTS.stat().st_size:,} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
