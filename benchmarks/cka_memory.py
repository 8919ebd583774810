"""Minibatch CKA's memory at LFW's size, without embedding: the analysis alone on stored features.

Writes random ReLU-like features of the widths of VGG16's 39 leaf layers (mean-pooled, as
``benchmarks/cka.py`` extracts them) for ``--images`` images and ``--models`` models into a
temporary embedding store, exactly as the engine writes them (chunks of ``--chunk-rows``), then
runs the ``cka`` analysis (minibatch debiased CKA, ``--minibatch`` images per batch) on views of
the store. Prints the analysis's time, its peak allocation (tracemalloc) and the process's peak
resident memory, beside the memory the full-Gram path would need. (``benchmarks/cka.py`` runs the
whole pipeline, embedding included, and compares with the full computation.)

    python benchmarks/cka_memory.py                   # 13,233 images x 39 layers x 2 models
    python benchmarks/cka_memory.py --images 2000     # a quicker run
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import tracemalloc

import numpy as np
import torch
from cka import peak_rss  # benchmarks/cka.py, beside this file

from facebench.engine import Embeddings
from facebench.layer_view import LayerView
from facebench.registry import get_registry
from facebench.store import EmbeddingStore
from facebench_tasks.cka import CKAAnalysis


def vgg16_widths() -> dict[str, int]:
    """The mean-pooled width of each VGG16 leaf layer, from one forward pass of a grey image."""
    model = get_registry().create("model", "vgg16", pretrained=False)
    leaves = [name for name in model.layer_names() if name not in ("features", "classifier")]
    model = get_registry().create("model", "vgg16", pretrained=False, extract_layers=leaves, reduction="mean")
    with torch.inference_mode():
        outputs = model.get_output(torch.zeros(1, 3, 224, 224))
    return {layer: int(outputs[layer].reshape(1, -1).shape[1]) for layer in leaves}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=13233, help="images (default 13,233, LFW)")
    parser.add_argument("--models", type=int, default=2, help="models (default 2)")
    parser.add_argument("--minibatch", type=int, default=512, help="images per CKA minibatch")
    parser.add_argument("--chunk-rows", type=int, default=1024, help="rows per store chunk file")
    args = parser.parse_args()

    widths = vgg16_widths()
    rng = np.random.default_rng(0)
    paths = [f"/benchmark/{i:05d}.png" for i in range(args.images)]
    keys = [hashlib.sha256(path.encode()).hexdigest()[:32] for path in paths]
    with (
        tempfile.TemporaryDirectory(prefix="facebench-cka-memory-") as folder,
        EmbeddingStore(folder) as store,
    ):
        start = time.perf_counter()
        views = {}
        for model in range(args.models):
            identity = f"random-vgg16-{model}"
            tables = {layer: store.table(identity, layer, "mean") for layer in widths}
            for layer, table in tables.items():
                for first in range(0, args.images, args.chunk_rows):
                    rows = min(args.chunk_rows, args.images - first)
                    block = np.abs(rng.standard_normal((rows, widths[layer]), dtype=np.float32))
                    table.write(keys[first : first + rows], block)
            embeddings = Embeddings(
                f"model-{model}", identity, torch.device("cpu"), tables, dict(zip(paths, keys, strict=True))
            )
            views.update({(f"model-{model}", layer): LayerView(embeddings, layer, paths) for layer in widths})
        stored = args.images * sum(widths.values()) * 4 * args.models / 2**30
        print(
            f"stored {args.images} images x {len(widths)} layers x {args.models} models "
            f"({stored:.1f} GiB of float32) in {time.perf_counter() - start:.0f} s; {peak_rss()}"
        )
        count = len(views)
        print(
            f"full-Gram path would hold {count * args.images**2 * 8 / 2**30:.1f} GiB "
            f"({count} x {args.images}^2 float64); minibatch path "
            f"{count * args.minibatch**2 * 8 / 2**20:.0f} MiB of batch Gram matrices"
        )
        tracemalloc.start()
        start = time.perf_counter()
        result = CKAAnalysis(methods=["debiased"], minibatch=args.minibatch).run(views)
        seconds = time.perf_counter() - start
        allocated = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(
            f"minibatch debiased CKA, {len(result)} values: {seconds:.0f} s, peak allocated "
            f"{allocated:.0f} MiB; {peak_rss()} (torch threads {torch.get_num_threads()})"
        )


if __name__ == "__main__":
    main()
